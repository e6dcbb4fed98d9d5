rule compare:
    input:
        **step_code("compare"),
        summaries=expand(rules.evaluate.output.summary, run=RUNS),
    output:
        table=report(
            "results/compare/summary.csv",
            caption="../report/compare_table.rst",
            category="Comparison",
            labels={"table": "runs side by side"},
        ),
        runs=report(
            "results/compare/runs.yaml",
            caption="../report/compare_runs.rst",
            category="Comparison",
            labels={"table": "settings per run"},
        ),
        png=report(
            "results/compare/compare.png",
            caption="../report/compare.rst",
            category="Comparison",
            labels={"figure": "runs side by side"},
        ),
        pdf="results/compare/compare.pdf",
    log:
        "results/logs/compare.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=as_json(cfg.compare_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --summaries {input.summaries:q}'
        " --settings {params.settings:q} --table {output.table:q}"
        " --runs {output.runs:q} --png {output.png:q} --pdf {output.pdf:q}"
        " > {log:q} 2>&1"
