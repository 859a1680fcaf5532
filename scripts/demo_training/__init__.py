"""The steps of scripts/train_demo.py, which trains the project's demo model (models/).

    texts       the corpus about food, the WordPiece vocabulary trained on it, the training texts
    images      reading the photos, the workshop's preprocessing, the training augmentation
    model       the demo's FoodClassifier, its ImageNet weights, what stays frozen
    training    the training loop
    evaluation  accuracy, confusion, confidence and robustness on the validation photos
    record      what model.json says about the training

scripts/ is the import root (train_demo.py is run from there); the model itself is scripts/foodmodel.
"""
