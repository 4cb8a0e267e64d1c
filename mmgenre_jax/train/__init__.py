"""Training one network (one pipeline stage), one job each:

  loop.py           train_and_evaluate(config, workdir): epochs, early
                    stopping, the best checkpoint, the test metrics
  setup.py          what training and evaluation share: data, facts, mesh,
                    network, the task's jitted steps
  train_state.py    parameters and optimizer; ImageNet weights of a ResNet
  label_factors.py  the COSINE label factors of a stage
  checkpoints.py    orbax checkpoints (the one module reading and writing
                    them) and the training progress saved beside them
  workdir_guard.py  one job per workdir, one experiment per workdir
"""
