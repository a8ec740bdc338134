"""Online models (pure: no Faust, no Kafka); agents call them. See :mod:`.anomaly`."""
