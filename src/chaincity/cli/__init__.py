"""The ``chaincity`` command."""
