//! Codes (scopes), data sources, OAuth clients, API keys.

use serde_json::json;

use super::entities::*;
use super::keys::{self, A, link};
use super::{Repo, del, item};
use crate::error::Result;
use crate::model::*;
use crate::ports::{Cond, Index, Item, Query, Write};

impl Repo {
    // ---------------------------------------------------------------- codes

    pub async fn code(&self, id: Id) -> Result<Option<Code>> {
        self.get(&keys::code(id), A).await
    }

    pub async fn code_by_key(&self, system: &str, code: &str) -> Result<Option<Code>> {
        let p: Option<Pointer> = self.get(&keys::code_key(system, code), A).await?;
        match p {
            Some(p) => self.code(p.id).await,
            None => Ok(None),
        }
    }

    pub async fn create_code(&self, c: &Code) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(item(keys::code(c.id), A, c)?.with_gsi1("CODES", keys::by_name(&c.text, c.id)), Cond::Absent, None);
        tx.put(
            item(keys::code_key(&c.coding_system, &c.coding_code), A, &Pointer { id: c.id, kind: None, owner: None })?,
            Cond::Absent,
            Some(format!("Code {}|{} already exists.", c.coding_system, c.coding_code)),
        );
        tx.commit(self).await
    }

    /// Every code, ordered by text.
    pub async fn list_codes(&self) -> Result<Vec<Code>> {
        self.query_parsed(Query::partition("CODES").on(Index::Gsi1)).await
    }

    pub async fn codes(&self, ids: &[Id]) -> Result<Vec<Code>> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(c) = self.code(*id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- data sources

    pub async fn data_source(&self, id: Id) -> Result<Option<DataSource>> {
        self.get(&keys::ds(id), A).await
    }

    pub(super) fn ds_item(d: &DataSource) -> Result<Item> {
        Ok(item(keys::ds(d.id), A, d)?.with_gsi1("DSS", keys::by_name(&d.name, d.id)))
    }

    pub async fn list_data_sources(&self) -> Result<Vec<DataSource>> {
        self.query_parsed(Query::partition("DSS").on(Index::Gsi1)).await
    }

    pub async fn create_data_source(&self, d: &DataSource) -> Result<()> {
        self.table.put(Self::ds_item(d)?, Cond::Absent).await.map_err(Into::into)
    }

    pub async fn save_data_source(&self, d: &DataSource) -> Result<()> {
        self.table.put(Self::ds_item(d)?, Cond::Exists).await.map_err(map_missing)
    }

    pub async fn delete_data_source(&self, id: Id) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            Write::Delete { key: crate::ports::Key::new(keys::ds(id), A), cond: Cond::Exists },
            Some("Not found.".into()),
        );
        for c in self.linked_ids(&keys::ds(id), "C#").await? {
            tx.push(del(keys::ds(id), link("C#", c)), None);
        }
        tx.commit(self).await
    }

    pub async fn supported_scope_ids(&self, ds: Id) -> Result<Vec<Id>> {
        self.linked_ids(&keys::ds(ds), "C#").await
    }

    /// Adds (`true`) or removes (`false`) a link item `pk / {prefix}{id}`; the owner must exist.
    pub async fn set_link(&self, owner_pk: &str, prefix: &str, id: Id, present: bool) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            Write::Check { key: crate::ports::Key::new(owner_pk, A), cond: Cond::Exists },
            Some("Not found.".into()),
        );
        if present {
            tx.put(Item::new(owner_pk, link(prefix, id), json!({})), Cond::None, None);
        } else {
            tx.push(del(owner_pk, link(prefix, id)), None);
        }
        tx.commit(self).await
    }

    // ---------------------------------------------------------------- clients

    pub async fn client(&self, id: Id) -> Result<Option<Client>> {
        self.get(&keys::client(id), A).await
    }

    pub(super) fn client_item(c: &Client) -> Result<Item> {
        Ok(item(keys::client(c.id), A, c)?.with_gsi1("CLIENTS", keys::pad(c.id)))
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>> {
        self.query_parsed(Query::partition("CLIENTS").on(Index::Gsi1)).await
    }

    pub async fn create_client(&self, c: &Client) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(Self::client_item(c)?, Cond::Absent, None);
        tx.put(
            item(keys::client_id(&c.client_id), A, &Pointer { id: c.id, kind: Some("client".into()), owner: None })?,
            Cond::Absent,
            Some(format!("A client with client id {} already exists.", c.client_id)),
        );
        tx.commit(self).await
    }

    pub async fn save_client(&self, old: &Client, c: &Client) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(Self::client_item(c)?, Cond::Exists, Some("Not found.".into()));
        if old.client_id != c.client_id {
            tx.push(del(keys::client_id(&old.client_id), A), None);
            tx.put(
                item(
                    keys::client_id(&c.client_id),
                    A,
                    &Pointer { id: c.id, kind: Some("client".into()), owner: None },
                )?,
                Cond::Absent,
                Some(format!("A client with client id {} already exists.", c.client_id)),
            );
        }
        tx.commit(self).await
    }

    pub async fn delete_client(&self, c: &Client) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(del(keys::client(c.id), A), None);
        tx.push(del(keys::client_id(&c.client_id), A), None);
        for d in self.linked_ids(&keys::client(c.id), "D#").await? {
            tx.push(del(keys::client(c.id), link("D#", d)), None);
        }
        tx.commit(self).await
    }

    pub async fn client_ref(&self, client_id: &str) -> Result<Option<ClientRef>> {
        let p: Option<Pointer> = self.get(&keys::client_id(client_id), A).await?;
        Ok(p.and_then(|p| match p.kind.as_deref() {
            Some("client") => Some(ClientRef::Client(p.id)),
            Some("apikey") => p.owner.map(|u| ClientRef::ApiKey { user_id: u, id: p.id }),
            _ => None,
        }))
    }

    pub async fn client_by_client_id(&self, client_id: &str) -> Result<Option<Client>> {
        match self.client_ref(client_id).await? {
            Some(ClientRef::Client(id)) => self.client(id).await,
            _ => Ok(None),
        }
    }

    // ---------------------------------------------------------------- API keys

    pub async fn api_keys(&self, user: Id) -> Result<Vec<ApiKey>> {
        self.query_parsed(Query::prefix(keys::user(user), "K#")).await
    }

    pub async fn api_key(&self, user: Id, id: Id) -> Result<Option<ApiKey>> {
        self.get(&keys::user(user), &link("K#", id)).await
    }

    pub async fn create_api_key(&self, k: &ApiKey) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(item(keys::user(k.user_id), link("K#", k.id), k)?, Cond::Absent, None);
        tx.put(
            item(
                keys::client_id(&k.client_id),
                A,
                &Pointer { id: k.id, kind: Some("apikey".into()), owner: Some(k.user_id) },
            )?,
            Cond::Absent,
            None,
        );
        tx.commit(self).await
    }

    pub async fn save_api_key(&self, k: &ApiKey) -> Result<()> {
        self.table.put(item(keys::user(k.user_id), link("K#", k.id), k)?, Cond::Exists).await.map_err(map_missing)
    }

    pub async fn delete_api_key(&self, k: &ApiKey) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(del(keys::user(k.user_id), link("K#", k.id)), None);
        tx.push(del(keys::client_id(&k.client_id), A), None);
        tx.commit(self).await
    }
}
