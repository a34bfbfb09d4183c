"""Runtime: the Spark session, the Delta JARs, the JVM options, materialisation."""
