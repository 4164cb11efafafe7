"""The subcommands of `mixerd`; each module has add_parser(subparsers) and sets args.run."""
