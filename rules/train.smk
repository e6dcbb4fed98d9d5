# Both phases resume from results/{run}/checkpoints/ (not a declared output, so a killed
# or preempted job keeps it and the rerun continues; docs/cluster.md, "Resume"). The
# workflow deletes a phase's checkpoint once it has accepted the outputs (onstart/onsuccess
# hooks), never the job: its outputs may yet be refused (a kill before it exits).
# `settings`: what the weights depend on, a change reruns the phase; `runtime`: the rest
# (checkpoint interval, validation subset, ...), which reruns nothing.


# The VGG19 weights of phase 2, provided before any training (rocksr/nets/vgg_files.py): a
# local rule, so that under SLURM the download runs where the network is, and an offline run
# stops here, before phase 1, with the file to place and where.
rule vgg_weights:
    input:
        **step_code("vgg_weights"),
        source=lambda w: (
            [] if VGG_WEIGHTS[w.vggfile] == "imagenet" else VGG_WEIGHTS[w.vggfile]
        ),
    output:
        weights="results/weights/{vggfile}",
        sha256="results/weights/{vggfile}.sha256",
    log:
        "results/logs/vgg_weights_{vggfile}.log",
    conda:
        "../envs/torch.yaml"
    params:
        source=lambda w: VGG_WEIGHTS[w.vggfile],
    shell:
        '"$PYTHON" {input.script:q} --source {params.source:q} --out {output.weights:q}'
        " --log {log:q}"


# What a run's VGG term is: the verified file, its sha256, origin, input, layer, exact. Phase 1
# waits for it (ancient: its rewrite never reruns phase 1); phase 2 loads what it names.
rule vgg_record:
    input:
        **step_code("vgg_record"),
        weights=lambda w: cfg.vgg_weights_file(config, w.run) or [],
    output:
        report(
            "results/{run}/vgg_weights.yaml",
            caption="../report/vgg.rst",
            category="Training",
            labels={"run": "{run}", "table": "VGG19 weights"},
        ),
    log:
        "results/{run}/logs/vgg_record.log",
    conda:
        "../envs/torch.yaml"
    params:
        settings=lambda w: as_json(cfg.vgg_settings(config, w.run)),
        # a list, each element quoted by :q; empty for random weights or no VGG term
        weights=lambda w, input: ["--weights", input.weights] if input.weights else [],
    shell:
        '"$PYTHON" {input.script:q} --settings {params.settings:q} {params.weights:q}'
        " --out {output:q} --log {log:q}"


rule train_phase1:
    input:
        **step_code("train"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        vgg_record=ancient("results/{run}/vgg_weights.yaml"),
    output:
        generator="results/{run}/phase1/generator.pt",
        metrics="results/{run}/phase1/metrics.csv",
    log:
        "results/{run}/logs/train_phase1.log",
    benchmark:
        "results/{run}/benchmarks/train_phase1.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
        slurm_extra=TRAIN_SLURM_EXTRA,
    params:
        settings=lambda w: as_json(cfg.phase_params(config, w.run, 1)[0]),
        runtime=untracked(lambda w: as_json(cfg.phase_params(config, w.run, 1)[1])),
        checkpoints="results/{run}/checkpoints/phase1",
    shell:
        '"$PYTHON" {input.script:q} --packs {input.packs:q}'
        " --settings {params.settings:q} --runtime-settings {params.runtime:q}"
        " --checkpoints {params.checkpoints:q}"
        " --generator {output.generator:q} --metrics {output.metrics:q}"
        " --threads {threads} --log {log:q} --gpus {resources.gpu}"


rule train_phase2:
    input:
        **step_code("train"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        init=rules.train_phase1.output.generator,
        vgg_record=rules.vgg_record.output[0],
        vgg_weights=lambda w: cfg.vgg_weights_file(config, w.run) or [],
    output:
        generator="results/{run}/phase2/generator.pt",
        discriminator="results/{run}/phase2/discriminator.pt",
        metrics="results/{run}/phase2/metrics.csv",
    log:
        "results/{run}/logs/train_phase2.log",
    benchmark:
        "results/{run}/benchmarks/train_phase2.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
        slurm_extra=TRAIN_SLURM_EXTRA,
    params:
        settings=lambda w: as_json(cfg.phase_params(config, w.run, 2)[0]),
        runtime=untracked(lambda w: as_json(cfg.phase_params(config, w.run, 2)[1])),
        checkpoints="results/{run}/checkpoints/phase2",
    shell:
        '"$PYTHON" {input.script:q} --packs {input.packs:q}'
        " --settings {params.settings:q} --runtime-settings {params.runtime:q}"
        " --checkpoints {params.checkpoints:q}"
        " --init {input.init:q} --generator {output.generator:q}"
        " --discriminator {output.discriminator:q} --metrics {output.metrics:q}"
        " --vgg-record {input.vgg_record:q}"
        " --threads {threads} --log {log:q} --gpus {resources.gpu}"
