"""Tools at the top of the graph: building the JVM class archive."""
