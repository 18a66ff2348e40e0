//! SCAFFOLD: replaced by the real postgres backend before it lands.

use crate::backend::{Backend, Connection};
use crate::config::{ConnectOptions, ParsedUrl};
use crate::error::{Error, Result};
use crate::value::{ResultSet, Value};

pub struct PostgresBackend;
pub struct PostgresConn;

impl PostgresBackend {
    pub fn new(_url: &ParsedUrl, _connect: &ConnectOptions) -> Result<PostgresBackend> {
        Err(Error::config("the postgres backend is not built yet"))
    }
}

impl Backend for PostgresBackend {
    type Conn = PostgresConn;
    fn connect(&self) -> Result<PostgresConn> {
        Err(Error::connect("the postgres backend is not built yet"))
    }
    fn name(&self) -> &'static str {
        "postgres"
    }
}

impl Connection for PostgresConn {
    fn is_closed(&mut self) -> bool {
        true
    }
    fn ping(&mut self) -> Result<()> {
        Err(Error::internal("scaffold"))
    }
    fn in_transaction(&mut self) -> bool {
        false
    }
    fn execute(&mut self, _sql: &str, _params: &[Value<'_>]) -> Result<u64> {
        Err(Error::internal("scaffold"))
    }
    fn query(&mut self, _sql: &str, _params: &[Value<'_>]) -> Result<ResultSet> {
        Err(Error::internal("scaffold"))
    }
    fn begin(&mut self) -> Result<()> {
        Err(Error::internal("scaffold"))
    }
    fn commit(&mut self) -> Result<()> {
        Err(Error::internal("scaffold"))
    }
    fn rollback(&mut self) -> Result<()> {
        Err(Error::internal("scaffold"))
    }
}
