"""The HDF5 feature store every stage reads from and writes to (schema in docs/store.md)."""

from afcli.store.inspect import store_info, verify_store
from afcli.store.merge import merge_stores
from afcli.store.reader import StoreDataset
from afcli.store.schema import DONE, FAILED, FIXED, PENDING, RAGGED, SCHEMA_VERSION, open_store, shard_path
from afcli.store.writer import StoreWriter, create_store

__all__ = [
    "DONE",
    "FAILED",
    "FIXED",
    "PENDING",
    "RAGGED",
    "SCHEMA_VERSION",
    "StoreDataset",
    "StoreWriter",
    "create_store",
    "merge_stores",
    "open_store",
    "shard_path",
    "store_info",
    "verify_store",
]
