import torch
from sklearn.datasets import load_digits
from torch import nn

import actsearch


def make_model():  # your model: every activation module or F.relu-style call is a site
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10))

def make_data():   # (train, val, test), each (inputs, class labels)
    digits = load_digits()
    x, y = torch.tensor(digits.data, dtype=torch.float32) / 16, torch.tensor(digits.target)
    return (x[:1100], y[:1100]), (x[1100:1450], y[1100:1450]), (x[1450:], y[1450:])

result = actsearch.search(model=make_model, data=make_data, choices=["relu", "elu", "selu"],
                          epochs=10, trials=30, study="own-model", progress="plain")
print(result.verdict)
