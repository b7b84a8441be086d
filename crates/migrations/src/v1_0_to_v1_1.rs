//! v1.0.0 → v1.1.0: metadata only.
//!
//! v1.1 introduced `BlockHeaderData` v2 rows; the `headers` table may hold v1 and v2 rows
//! side by side (each decodes by its own tag and verifies against the bytes it was written
//! with), so no row is rewritten. The step records version 1.1.0 and refreshes the schema
//! hash to the v1.1.0 one, in one synced transaction.

use std::time::Instant;
use storage_traits::kv::KvStore;
use storage_traits::model::{DbMetadata, DbVersion, MigrationStatus};

use crate::error::{MigrationError, Result};
use crate::framework::*;
use crate::schema::{V1_0_0, V1_1_0, schema_hash_for};

/// The v1.0.0 → v1.1.0 step.
#[derive(Clone, Copy, Debug, Default)]
pub struct V1_0ToV1_1;

impl<S: KvStore> Migration<S> for V1_0ToV1_1 {
    fn from(&self) -> DbVersion {
        V1_0_0
    }

    fn to(&self) -> DbVersion {
        V1_1_0
    }

    fn kind(&self) -> MigrationKind {
        MigrationKind::Minor
    }

    fn name(&self) -> &'static str {
        "BlockHeaderData v2 (metadata only)"
    }

    fn run(&self, ctx: &mut MigrationContext<'_, S>) -> Result<()> {
        let started = Instant::now();
        let progress = |event| MigrationProgress {
            from: V1_0_0,
            to: V1_1_0,
            stage: Stage::Metadata,
            event,
            height: None,
            tip: None,
            elapsed: started.elapsed(),
        };
        ctx.report(progress(ProgressEvent::Started));
        let meta = read_metadata(&ctx.store.begin_read()?)?.ok_or(MigrationError::NoMetadata)?;
        let schema_hash = schema_hash_for(V1_1_0).unwrap_or(meta.schema_hash);
        write_metadata(
            ctx.store,
            DbMetadata {
                version: V1_1_0,
                schema_hash,
                migration_status: MigrationStatus::Empty,
            },
        )?;
        ctx.report(progress(ProgressEvent::Finished));
        Ok(())
    }
}
