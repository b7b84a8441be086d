//! The tuning knobs a host may set, and how they become RocksDB options.

use rocksdb::{BlockBasedIndexType, BlockBasedOptions, Cache, DBCompressionType, Options};

/// The block compression of every table's SST files. Only LZ4 and Zstandard are compiled
/// into the RocksDB build (the workspace turns the crate's default codecs off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4: fast, a moderate ratio. The default.
    #[default]
    Lz4,
    /// Zstandard: a better ratio for more CPU.
    Zstd,
}

impl Compression {
    fn rocksdb(self) -> DBCompressionType {
        match self {
            Compression::None => DBCompressionType::None,
            Compression::Lz4 => DBCompressionType::Lz4,
            Compression::Zstd => DBCompressionType::Zstd,
        }
    }
}

/// Options of a [`crate::RocksStore`]. Every field has a bounded default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RocksOptions {
    /// The most SST files RocksDB keeps open at once (default 512). RocksDB raises values
    /// below 20 to 20; values above `i32::MAX` are capped.
    pub max_open_files: u32,
    /// The capacity of the LRU block cache shared by every table, in bytes (default
    /// 64 MiB). Index and filter blocks are charged to it too, so it bounds read memory.
    pub block_cache_bytes: usize,
    /// The compression of SST data blocks (default LZ4).
    pub compression: Compression,
}

/// The default cap on open files.
pub const DEFAULT_MAX_OPEN_FILES: u32 = 512;
/// The default block cache capacity.
pub const DEFAULT_BLOCK_CACHE_BYTES: usize = 64 << 20;

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES,
            compression: Compression::default(),
        }
    }
}

impl RocksOptions {
    /// The RocksDB options for the database and for every column family (the Rust binding
    /// carries both in one `Options`).
    pub(crate) fn to_rocksdb(self, cache: &Cache) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(cache);
        // Point lookups of absent keys (put-if-absent on new txids) skip the data block.
        table.set_bloom_filter(10.0, false);
        // Index and filter blocks live in the bounded cache instead of outside it; L0's
        // stay pinned since every read consults them.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Filters and indexes in partitions of about 4 KiB behind a small top level, pinned
        // while its file is open: a lookup loads the one partition it needs. With whole
        // filters, once a store's filters outgrew the cache most lookups re-read the
        // filter of every file they consulted (about a megabyte each): 17 % of the CPU of
        // the default ingest bench's sync (README, Options).
        table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_partition_filters(true);
        table.set_pin_top_level_index_and_filter(true);

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_open_files(i32::try_from(self.max_open_files).unwrap_or(i32::MAX));
        opts.set_block_based_table_factory(&table);
        opts.set_compression_type(self.compression.rocksdb());
        opts.set_bottommost_compression_type(self.compression.rocksdb());
        // Lookups of absent keys skip the memtables' skip lists too (see the README's
        // Options for the measurement); 2 % of each write buffer, allocated per memtable.
        opts.set_memtable_whole_key_filtering(true);
        opts.set_memtable_prefix_bloom_ratio(0.02);
        opts
    }
}
