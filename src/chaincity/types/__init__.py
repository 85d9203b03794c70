"""Immutable message structs with bounded fields; see chaincity.codec for their bytes."""
