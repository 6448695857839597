"""Lightning glue: the methods as LightningModules (a shared base + one loss each), built from configs and
checkpoints (build.py), callbacks, checkpoint IO and loggers. No math: the equations live in objectives/."""
