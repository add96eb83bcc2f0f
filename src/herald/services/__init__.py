"""One module per service; each has ``main(argv)`` and ``run(settings, *, stop, ...)``."""
