//! A question set for chat and how its answers are graded: questions a data engineer would ask about
//! a few warehouses, each with the names a right answer must give (`tests/fixtures/chat/` holds one;
//! its README gives the format). The black-box suite and `tributary-bench questions` both read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A question set: the warehouses it is asked about and the questions.
#[derive(Debug, Clone, Deserialize)]
pub struct QuestionSet {
    pub warehouses: BTreeMap<String, Warehouse>,
    pub questions: Vec<Question>,
    /// The folder the warehouses' files are named from.
    #[serde(skip)]
    pub folder: PathBuf,
}

/// SQL files of one warehouse, in upload order, and their dialect.
#[derive(Debug, Clone, Deserialize)]
pub struct Warehouse {
    pub dialect: String,
    pub files: Vec<String>,
}

/// One question and what its right answer names.
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub warehouse: String,
    /// `graph`, `deep` or `semantic`.
    pub mode: String,
    pub question: String,
    pub must_name: Vec<String>,
    /// For search: the named object's statement must be among the answer's first this many hits.
    #[serde(default)]
    pub within_hits: Option<usize>,
}

impl QuestionSet {
    /// Reads `questions.json` from `folder`.
    pub fn load(folder: &Path) -> anyhow::Result<QuestionSet> {
        let path = folder.join("questions.json");
        let text = std::fs::read_to_string(&path).map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?;
        let mut set: QuestionSet = serde_json::from_str(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        set.folder = folder.to_owned();
        Ok(set)
    }

    /// A warehouse's files as `(file name, content)`, in upload order.
    pub fn files(&self, warehouse: &str) -> anyhow::Result<Vec<(String, String)>> {
        let found = self.warehouses.get(warehouse).ok_or_else(|| anyhow::anyhow!("no warehouse {warehouse}"))?;
        found
            .files
            .iter()
            .map(|file| {
                let path = self.folder.join(file);
                let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| file.clone());
                Ok((name, std::fs::read_to_string(&path).map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?))
            })
            .collect()
    }
}

impl Question {
    /// The names of `must_name` the answer does not give (none: it is right). Names are compared
    /// case-insensitively, without quotes and brackets and with spaces collapsed. With `within_hits`,
    /// a name counts only in one of the answer's first that many list items that is a definition
    /// (says `CREATE`): a statement that merely mentions it is not where it is defined.
    pub fn missing(&self, answer: &str) -> Vec<String> {
        let Some(hits) = self.within_hits else {
            let searched = normalized(answer);
            return self.must_name.iter().filter(|name| !searched.contains(&normalized(name))).cloned().collect();
        };
        let definitions: Vec<String> = answer
            .lines()
            .filter(|line| line.trim_start().starts_with("- "))
            .take(hits)
            .map(normalized)
            .filter(|item| item.contains("create"))
            .collect();
        self.must_name.iter().filter(|name| !definitions.iter().any(|item| item.contains(&normalized(name)))).cloned().collect()
    }
}

fn normalized(text: &str) -> String {
    let kept: String = text.chars().filter(|c| !matches!(c, '`' | '"' | '[' | ']')).flat_map(char::to_lowercase).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_across_quotes_case_and_spacing() {
        let question = Question {
            warehouse: "w".into(),
            mode: "graph".into(),
            question: "q".into(),
            must_name: vec!["gold.dim_customer.customer_tier".into(), "OrderQty * d.UnitPrice".into()],
            within_hits: None,
        };
        assert!(question.missing("`gold.dim_customer.customer_tier` = d.[OrderQty]  *\n d.[UnitPrice]").is_empty());
        assert_eq!(question.missing("gold.dim_customer"), question.must_name);
    }

    #[test]
    fn search_answers_count_only_their_first_hits() {
        let question = Question {
            warehouse: "w".into(),
            mode: "semantic".into(),
            question: "q".into(),
            must_name: vec!["sales.salesorderheader".into()],
            within_hits: Some(1),
        };
        assert!(question.missing("Hits:\n- `a.sql` CREATE TABLE `sales.salesorderheader`\n- b").is_empty());
        assert_eq!(question.missing("Hits:\n- b\n- `a.sql` CREATE TABLE `sales.salesorderheader`").len(), 1);
        assert_eq!(question.missing("Hits:\n- `a.sql` ALTER TABLE `sales.salesorderheader`").len(), 1, "a mention is not a definition");
    }
}
