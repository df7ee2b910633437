"""Baselines behind the one scoring interface, one module each: ``popularity`` (random, most_popular),
``neighbours`` (item_knn, user_knn), ``content`` (content_knn), ``ease``, ``factors`` (als, bpr),
``hybrid`` and ``sasrec``. The registry and what they share is :mod:`.base`; importing :mod:`.catalog`
registers them all. Importing this package loads none of them."""
