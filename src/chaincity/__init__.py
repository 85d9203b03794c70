"""chaincity: a consortium blockchain platform for cities and industry alliances."""

__version__ = "0.1.0"
