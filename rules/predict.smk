# Your own images (README "Super-resolve your own images"): `snakemake predict` runs
# super_resolve for every enabled run on the image, stack or folder in predict.input.


rule super_resolve:
    input:
        **step_code("predict"),
        image=lambda w: predict_input(w.name),
        srcnn=rules.train_phase1.output.generator,
        srgan=rules.train_phase2.output.generator,
    output:
        manifest="results/{run}/predict/{name}/manifest.json",
    log:
        "results/{run}/logs/predict_{name}.log",
    benchmark:
        "results/{run}/benchmarks/predict_{name}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        settings=as_json(cfg.predict_settings(config)),
        out_dir=lambda w, output: os.path.dirname(output.manifest),
        device=config["evaluation"]["device"],
    shell:
        '"$PYTHON" {input.script:q} --input {input.image:q}'
        " --model srcnn={input.srcnn:q} --model srgan={input.srgan:q}"
        " --out-dir {params.out_dir:q} --settings {params.settings:q}"
        " --threads {threads} --log {log:q}"
        " --device {params.device:q} --gpus {resources.gpu}"


rule predict:
    input:
        lambda w: expand(
            rules.super_resolve.output.manifest,
            run=RUNS,
            name=input_name(predict_input()),
        ),
