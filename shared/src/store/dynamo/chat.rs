//! Chat sessions on DynamoDB: one partition per session, one item per turn (see the key design in
//! the parent module).

use super::lineage::{Item, from_json, is_conditional_failure, key, to_json};
use super::*;

fn session_pk(session: &str) -> String {
    format!("CHAT#{session}")
}

#[async_trait]
impl ChatStore for DynamoStore {
    async fn append_turn(&self, session: &str, turn: &Turn) -> Result<(), StoreError> {
        let mut item = key(session_pk(session), format!("TURN#{}#{}", sort_time(turn.at.timestamp_millis()), turn.id));
        item.insert("turn".to_owned(), s(to_json(turn)?));
        let expires = turn.at + chrono::Duration::from_std(CHAT_SESSION_TTL).unwrap_or(chrono::Duration::days(30));
        item.insert("expires_at".to_owned(), n(expires.timestamp()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(error) if is_conditional_failure(&error) => Ok(()),
            Err(error) => Err(classify(error)),
        }
    }

    async fn recent_turns(&self, session: &str, limit: usize) -> Result<Vec<Turn>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(session_pk(session)))
            .expression_attribute_values(":prefix", s("TURN#"))
            .scan_index_forward(false);
        let now = crate::time::now().timestamp();
        let mut turns = query_pages(query, Some(limit))
            .await?
            .iter()
            // TTL deletion lags: a turn past its time is gone already as far as readers go.
            .filter(|item| {
                item.get("expires_at").and_then(|value| value.as_n().ok()).and_then(|n| n.parse::<i64>().ok()).is_none_or(|at| at > now)
            })
            .map(|item: &Item| from_json::<Turn>(item, "turn"))
            .collect::<Result<Vec<_>, _>>()?;
        turns.reverse();
        Ok(turns)
    }

    async fn delete_session(&self, session: &str) -> Result<bool, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(session_pk(session)))
            .projection_expression("pk, sk");
        let keys = query_pages(query, None).await?;
        let found = !keys.is_empty();
        self.batch_write(keys.into_iter().map(DynamoStore::delete_request).collect::<Result<_, _>>()?).await?;
        Ok(found)
    }
}
