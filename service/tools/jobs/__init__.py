"""Kubernetes Jobs the product creates: adapter training (uploaded through the adapter API), TensorRT engine builds
and multi-node torchrun training (an Indexed Job).

    defaults.py   what a release's chart publishes for Jobs (images, claims, GPU placement, gateway URL)
    pods.py       the shared pieces of a Job's pod: restricted containers, GPU resources, volumes, names
    adapt.py      `tipsv2 adapt` then the upload of its adapter, as one Job
    engines.py    `tipsv2 engines build` on the serving GPU model
    train.py      torchrun across nodes: an Indexed Job and its headless Service
    submit.py     the only module that talks to the API server (thin: create, own, start)
    upload.py     the adapter upload step, run inside the adapter Job

The builders return plain manifests (dicts) so that they can be validated offline exactly as they would be sent.
"""
