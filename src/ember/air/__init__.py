"""The pieces Tune and Train share: checkpoints, the run configuration and report()."""
