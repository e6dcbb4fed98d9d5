rule evaluate:
    input:
        **step_code("evaluate"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        manifest=lambda w: f"{data_dir(w.run)}/manifest.csv",
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
        external=[e["path"] for e in config["evaluation"]["external"]],
    output:
        per_image="results/{run}/evaluation/per_image.csv",
        summary=report(
            "results/{run}/evaluation/summary.csv",
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"run": "{run}", "table": "summary (CSV)"},
        ),
        spectra="results/{run}/evaluation/spectra.csv",
    log:
        "results/{run}/logs/evaluate.log",
    benchmark:
        "results/{run}/benchmarks/evaluate.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        settings=as_json(cfg.evaluation_settings(config)),
    shell:
        '"$PYTHON" {input.script:q} --packs {input.packs:q}'
        " --manifest {input.manifest:q} --srcnn {input.srcnn:q} --srgan {input.srgan:q}"
        " --settings {params.settings:q} --per-image {output.per_image:q}"
        " --summary {output.summary:q} --spectra {output.spectra:q}"
        " --threads {threads} --log {log:q}"
        " --gpus {resources.gpu}"


rule summary_table:
    input:
        **step_code("summary_table"),
        summary=rules.evaluate.output.summary,
    output:
        html=report(
            "results/{run}/evaluation/summary.html",
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"run": "{run}", "table": "PSNR, SSIM, porosity, texture"},
        ),
    log:
        "results/{run}/logs/summary_table.log",
    conda:
        "../envs/torch.yaml"
    shell:
        '"$PYTHON" {input.script:q} --summary {input.summary:q} --run {wildcards.run:q}'
        " --html {output.html:q} > {log:q} 2>&1"
