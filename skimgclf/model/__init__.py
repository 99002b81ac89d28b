"""From images to labels: the network, its training, prediction, the estimator, model files.

One module each::

    params.py       the classifier's parameters, declared once (no TensorFlow)
    network.py      build_cnn: the Keras model from those parameters
    training.py     seeding, the epoch progress bar, memory-mapped batches
    inference.py    predict_proba: eager or through a traced graph
    classifier.py   CNNClassifier, the scikeras subclass (the only scikeras import)
    persistence.py  save / load: a model file that runs no code

Importing this package imports none of them: ``params`` is read by the
command line without TensorFlow, the others import Keras.
"""
