# EDSR / EDSRGAN super-resolution of rock micro-CT slices and volumes (Wang et al. 2020).
# Run: snakemake --cores 8 --resources gpu=1      (see README.md)


# The defaults live beside this file, so `--directory elsewhere` still finds them.
configfile: f"{workflow.basedir}/config.yaml"


# The HTML report (`--report`) opens with this page: what was run, and the citations.
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/figures.smk"
include: "rules/predict.smk"
include: "rules/compare.smk"


# Run by Snakemake itself, never submitted, under a cluster profile (profiles/slurm).
localrules:
    all,
    download,
    synthetic_archive,
    vgg_weights,
    vgg_record,
    figure3,
    training_curves,
    predict,
    export,
    texture_figure,
    compare,
    compare_figure,
    summary_table,
    rock_metrics_figure,


# At the end of a successful run: the accepted phases' checkpoints go (as on error, in
# rules/common.smk), then where the HTML report comes from, and each run's test-split
# PSNR table.
onsuccess:
    hooks.remove_accepted_checkpoints(workflow)
    hooks.print_summary(RUNS)


rule all:
    default_target: True
    input:
        all_targets(),
