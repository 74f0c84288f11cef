"""The use cases, written against the ports: indexing tools and searching them."""

from gateway.services.indexer import Indexer
from gateway.services.search import SearchResult, SearchService

__all__ = ["Indexer", "SearchResult", "SearchService"]
