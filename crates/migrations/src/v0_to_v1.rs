//! v0.0.0 → v1.0.0: shadow build and promotion.
//!
//! The v1 store is built beside the v0 store, which is never written and keeps serving
//! until promotion. The step keeps its state in the v1 store's metadata row:
//!
//! 1. No row yet: write `{0.0.0, PartialBuildInProgress}` (the v1 store is a shadow).
//! 2. Build: append blocks from the host's [`BlockSource`](crate::BlockSource) through the
//!    host's write path, from the shadow's tip + 1 (so a killed build resumes where its
//!    last durable batch ended) to the source's tip, which must reach v0's tip.
//! 3. Validate the whole shadow (full read-back validation by the host). A failure stops
//!    here: v0 stays primary, the shadow is not promoted.
//! 4. Promote: write `{0.0.0, PartialBuildComplete}`. From here v1 is authoritative.
//! 5. Remove v0 (idempotent), then write `{1.0.0, Empty}`.
//!
//! A crash before 4 resumes the build; a crash between 4 and 5 re-runs only the removal.
//!
//! The host's write path is the current one, so the shadow also holds the v1.2 indices;
//! the later steps verify them rather than trust them.

use std::time::Instant;

use storage_traits::kv::KvStore;
use storage_traits::model::{DbMetadata, DbVersion, Height, MigrationStatus};

use crate::error::{MigrationError, Result};
use crate::framework::*;
use crate::schema::{V0_0_0, V1_0_0, schema_hash_for};

/// The v0.0.0 → v1.0.0 step.
#[derive(Clone, Copy, Debug, Default)]
pub struct V0ToV1;

fn shadow_meta(status: MigrationStatus) -> DbMetadata {
    DbMetadata {
        version: V0_0_0,
        schema_hash: [0; 32],
        migration_status: status,
    }
}

impl<S: KvStore> Migration<S> for V0ToV1 {
    fn from(&self) -> DbVersion {
        V0_0_0
    }

    fn to(&self) -> DbVersion {
        V1_0_0
    }

    fn kind(&self) -> MigrationKind {
        MigrationKind::Major
    }

    fn name(&self) -> &'static str {
        "shadow build and promotion"
    }

    fn run(&self, ctx: &mut MigrationContext<'_, S>) -> Result<()> {
        let host = ctx.host.ok_or_else(|| MigrationError::HostRequired {
            from: V0_0_0,
            to: V1_0_0,
            what: "a host",
            hint: "the v0 -> v1 step builds blocks through the host's write path".to_owned(),
        })?;
        let store = ctx.store;
        let started = Instant::now();
        let report = |ctx: &mut MigrationContext<'_, S>,
                      stage: Stage,
                      event: ProgressEvent,
                      height: Option<Height>,
                      tip: Option<Height>| {
            ctx.report(MigrationProgress {
                from: V0_0_0,
                to: V1_0_0,
                stage,
                event,
                height,
                tip,
                elapsed: started.elapsed(),
            })
        };
        let meta = read_metadata(&store.begin_read()?)?;
        let status = match meta {
            None => MigrationStatus::Empty,
            Some(m) if m.version == V0_0_0 => m.migration_status,
            Some(m) => {
                return Err(MigrationError::StepDidNotAdvance {
                    from: V0_0_0,
                    to: V1_0_0,
                    found: m.version,
                    status: m.migration_status,
                });
            }
        };
        if status != MigrationStatus::PartialBuildComplete {
            let source = host
                .block_source()
                .ok_or_else(|| MigrationError::HostRequired {
                    from: V0_0_0,
                    to: V1_0_0,
                    what: "a block source",
                    hint: "the v1 store is built from a block source (a validator); \
                           open the store with one"
                        .to_owned(),
                })?;
            if meta.is_none() {
                write_metadata(store, shadow_meta(MigrationStatus::PartialBuildInProgress))?;
            }
            let source_tip = source.tip()?;
            let v0_tip = host.v0_tip()?;
            if let Some(v0_tip) = v0_tip
                && source_tip.is_none_or(|t| t < v0_tip)
            {
                return Err(MigrationError::SourceBehind {
                    source_tip: source_tip.map(|t| t.0),
                    v0_tip: v0_tip.0,
                });
            }
            let next = match host.shadow_tip()? {
                Some(t) => Height(t.0 + 1),
                None => host.start_height(),
            };
            report(
                ctx,
                Stage::ShadowBuild,
                ProgressEvent::Started,
                Some(next),
                source_tip,
            );
            if let Some(tip) = source_tip
                && next <= tip
            {
                let mut failure = None;
                let mut blocks = (next.0..=tip.0).map_while(|h| match source.block(Height(h)) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        failure = Some(e);
                        None
                    }
                });
                host.write_shadow_blocks(&mut blocks, &mut |h| {
                    report(
                        ctx,
                        Stage::ShadowBuild,
                        ProgressEvent::Progress,
                        Some(Height(h.0 + 1)),
                        Some(tip),
                    )
                })?;
                drop(blocks);
                if let Some(e) = failure {
                    return Err(e.into());
                }
            }
            report(
                ctx,
                Stage::ShadowBuild,
                ProgressEvent::Finished,
                None,
                source_tip,
            );
            report(
                ctx,
                Stage::ShadowValidate,
                ProgressEvent::Started,
                None,
                source_tip,
            );
            host.validate_shadow()
                .map_err(|source| MigrationError::ShadowInvalid { source })?;
            report(
                ctx,
                Stage::ShadowValidate,
                ProgressEvent::Finished,
                None,
                source_tip,
            );
            // Promotion: from this commit on, v1 is the store.
            write_metadata(store, shadow_meta(MigrationStatus::PartialBuildComplete))?;
        }
        report(ctx, Stage::Promote, ProgressEvent::Started, None, None);
        host.remove_v0()?;
        write_metadata(
            store,
            DbMetadata {
                version: V1_0_0,
                schema_hash: schema_hash_for(V1_0_0).unwrap_or([0; 32]),
                migration_status: MigrationStatus::Empty,
            },
        )?;
        report(ctx, Stage::Promote, ProgressEvent::Finished, None, None);
        Ok(())
    }
}
