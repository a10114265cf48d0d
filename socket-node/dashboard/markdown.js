// @ts-check
// The Markdown chat answers are written in, turned into DOM nodes: paragraphs, headings, bullet and
// numbered lists, fenced code, inline code, bold and italics. Text only ever becomes text nodes,
// never HTML, so an answer cannot inject markup.

/**
 * @param {string} markdown
 * @returns {Node[]}
 */
export function render(markdown) {
  /** @type {Node[]} */
  const blocks = [];
  const lines = markdown.replaceAll("\r\n", "\n").split("\n");
  /** @type {HTMLUListElement | HTMLOListElement | null} */
  let list = null;
  /** @type {string[]} */
  let paragraph = [];
  const endParagraph = () => {
    if (paragraph.length) blocks.push(block("p", paragraph.join(" ")));
    paragraph = [];
  };
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index];
    if (line.startsWith("```")) {
      endParagraph();
      list = null;
      const code = [];
      for (index += 1; index < lines.length && !lines[index].startsWith("```"); index += 1) code.push(lines[index]);
      const pre = document.createElement("pre");
      const inner = document.createElement("code");
      inner.textContent = code.join("\n");
      pre.append(inner);
      blocks.push(pre);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (heading) {
      endParagraph();
      list = null;
      // Answers sit under the page's own headings, so theirs start at h3.
      blocks.push(block(`h${Math.min(6, heading[1].length + 2)}`, heading[2]));
    } else if (bullet || numbered) {
      endParagraph();
      const tag = bullet ? "UL" : "OL";
      if (!list || list.tagName !== tag) {
        list = /** @type {HTMLUListElement | HTMLOListElement} */ (document.createElement(tag.toLowerCase()));
        blocks.push(list);
      }
      list.append(block("li", /** @type {RegExpExecArray} */ (bullet ?? numbered)[1]));
    } else if (line.trim() === "") {
      endParagraph();
      list = null;
    } else {
      list = null;
      paragraph.push(line.trim());
    }
  }
  endParagraph();
  return blocks;
}

/**
 * @param {string} tag
 * @param {string} text
 */
function block(tag, text) {
  const element = document.createElement(tag);
  element.append(...inline(text));
  return element;
}

/**
 * `code`, **bold** and *italic* (or _italic_) within a line.
 * @param {string} text
 * @returns {Node[]}
 */
export function inline(text) {
  /** @type {Node[]} */
  const nodes = [];
  const pattern = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\b_([^_]+)_\b/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    const at = /** @type {number} */ (match.index);
    if (at > last) nodes.push(document.createTextNode(text.slice(last, at)));
    const [, code, bold, italic, underscored] = match;
    const tag = code !== undefined ? "code" : bold !== undefined ? "strong" : "em";
    const element = document.createElement(tag);
    element.textContent = code ?? bold ?? italic ?? underscored;
    nodes.push(element);
    last = at + match[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
