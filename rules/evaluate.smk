rule evaluate:
    input:
        script=script_path("evaluate"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        manifest=lambda w: f"{data_dir(w.run)}/manifest.csv",
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
    output:
        per_image="results/{run}/evaluation/per_image.csv",
        summary=report(
            "results/{run}/evaluation/summary.csv",
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"run": "{run}", "table": "PSNR/SSIM/porosity summary"},
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
        settings=as_json(config["evaluation"]),
    shell:
        "python {input.script} --packs {input.packs}"
        " --manifest {input.manifest} --srcnn {input.srcnn} --srgan {input.srgan}"
        " --settings {params.settings:q} --per-image {output.per_image}"
        " --summary {output.summary} --spectra {output.spectra:q}"
        " --threads {threads} --log {log}"


rule predict:
    input:
        script=script_path("predict"),
        images=config["predict"]["input_dir"] or [],
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
    output:
        directory("results/{run}/predict"),
    log:
        "results/{run}/logs/predict.log",
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
    shell:
        "python {input.script} --input-dir {input.images:q}"
        " --model srcnn={input.srcnn} --model srgan={input.srgan}"
        " --out-dir {output} --threads {threads} --log {log}"
