"""The toolkit's core: registry, config, context, runner, store, verdict, report."""
