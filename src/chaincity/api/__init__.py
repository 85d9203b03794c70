"""The node's HTTP JSON API."""
