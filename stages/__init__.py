"""DVC stage entry points: thin commands that parse paths, read their own params and call pixrec."""
