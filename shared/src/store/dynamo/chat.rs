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
        let now = crate::time::now().timestamp();
        let mut turns = self
            .newest_with_prefix(&session_pk(session), "TURN#", limit)
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
        let pk = session_pk(session);
        let turns = self.query_all(&pk, Some("TURN#")).await?;
        let found = !turns.is_empty();
        let deletes = turns.iter().map(|item| DynamoStore::delete_request(key(pk.clone(), text(item, "sk")?))).collect::<Result<_, _>>()?;
        self.batch_write(deletes).await?;
        Ok(found)
    }
}
