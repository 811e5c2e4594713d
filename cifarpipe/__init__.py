"""cifarpipe: a reproducible DVC pipeline that trains ResNets on CIFAR-10 with the one-cycle policy.

One folder per concern. A stage lists in dvc.yaml the folders it imports, so an edit reruns exactly the stages
that run the edited folder (docs/reruns.md, `cifarpipe reruns`). Folders named after a stage hold that stage's
own code and pictures; the rest serve several stages:

    core/      params, paths, atomic artifacts, errors, the stage runner, dvclive   every stage
    download/  fetch the archive, check it and parse it                           download
    data/      the data set, its augmentation and the batches on the device       stats .. gradcam
    model/     the two networks                                                    preview .. gradcam
    compute/   the device, precision, GPU claims, the ranks of a run               lr_find, train, evaluate, gradcam
    optim/     the optimizers                                                      lr_find, train
    schedule/  the one-cycle LR                                                    train, aggregate
    scoring/   a model's logits, loss and accuracy over a loader                   train, evaluate
    figures/   what every picture shares                                           the stages that draw
    tools/     the cifarpipe command: doctor, report, reruns, bench                no stage
"""
