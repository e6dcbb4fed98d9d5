"""The glue between Snakemake and the library: config loading and validation, the step
scripts' shared CLI, the modules each step imports (codedeps) and the workflow's hooks.
May import the ground floor only, so the Snakefile stays light."""
