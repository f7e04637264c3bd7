"""The search index: HNSW graphs (usearch) behind the vector store.

The web processes reach it through ``protocol.IndexClient``; the graphs,
the stream follower and the files live in the ``index`` process
(``server.main``). Nothing outside this package touches usearch.
"""
