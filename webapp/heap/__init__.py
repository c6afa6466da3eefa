"""Heap Analytics client: ingestion calls and the GDPR user deletion API."""

from webapp.heap.calls import OPERATIONS, PreparedCall, Repeat
from webapp.heap.client import HeapClient
from webapp.heap.errors import (
    HeapAuthError,
    HeapBadRequest,
    HeapError,
    HeapNotFound,
    HeapOutcomeUnknown,
    HeapRateLimited,
    HeapUnavailable,
    HeapURLNotAllowed,
    HeapValidationError,
    error_class,
    parse_error_message,
)
from webapp.heap.hosts import HeapHosts, check_base_url, is_heap_host, resolve_hosts
from webapp.heap.redaction import redact
from webapp.heap.results import DeletionAccepted, DeletionStatus, IngestionResult
from webapp.heap.validation import (
    email_key_warnings,
    is_non_unique_identity,
    normalise_user_id,
    validate_deletion_users,
    validate_identity,
    validate_properties,
)

__all__ = [
    "OPERATIONS",
    "DeletionAccepted",
    "DeletionStatus",
    "HeapAuthError",
    "HeapBadRequest",
    "HeapClient",
    "HeapError",
    "HeapHosts",
    "HeapNotFound",
    "HeapOutcomeUnknown",
    "HeapRateLimited",
    "HeapURLNotAllowed",
    "HeapUnavailable",
    "HeapValidationError",
    "IngestionResult",
    "PreparedCall",
    "Repeat",
    "check_base_url",
    "email_key_warnings",
    "error_class",
    "is_heap_host",
    "is_non_unique_identity",
    "normalise_user_id",
    "parse_error_message",
    "redact",
    "resolve_hosts",
    "validate_deletion_users",
    "validate_identity",
    "validate_properties",
]
