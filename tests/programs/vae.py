# In the style of pytorch/examples vae/main.py (written anew for deepgrad's tests).
import argparse
import os
import tempfile
import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F
from torchvision import datasets, transforms
from torchvision.utils import save_image

parser = argparse.ArgumentParser(description='VAE MNIST Example')
parser.add_argument('--batch-size', type=int, default=128)
parser.add_argument('--batches', type=int, default=15)
parser.add_argument('--seed', type=int, default=1)
args = parser.parse_args()
torch.manual_seed(args.seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
kwargs = {'num_workers': 1, 'pin_memory': True} if torch.cuda.is_available() else {}
train_loader = torch.utils.data.DataLoader(
    datasets.MNIST('../data', train=True, download=True, transform=transforms.ToTensor()),
    batch_size=args.batch_size, shuffle=True, **kwargs)


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(784, 200)
        self.fc21 = nn.Linear(200, 16)
        self.fc22 = nn.Linear(200, 16)
        self.fc3 = nn.Linear(16, 200)
        self.fc4 = nn.Linear(200, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


model = VAE().to(device)
optimizer = optim.Adam(model.parameters(), lr=1e-3)


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


model.train()
train_loss = 0
for batch_idx, (data, _) in enumerate(train_loader):
    data = data.to(device)
    optimizer.zero_grad()
    recon_batch, mu, logvar = model(data)
    loss = loss_function(recon_batch, data, mu, logvar)
    loss.backward()
    train_loss += loss.item()
    optimizer.step()
    if batch_idx % 10 == 0:
        print('Train: [{}/{}]\tLoss: {:.6f}'.format(batch_idx * len(data), len(train_loader.dataset),
                                                   loss.item() / len(data)))
    if batch_idx + 1 == args.batches:
        break
with torch.no_grad():
    sample = torch.randn(64, 16).to(device)
    sample = model.decode(sample).cpu()
    out = tempfile.mkdtemp()
    save_image(sample.view(64, 1, 28, 28), os.path.join(out, 'sample.png'))
    comparison = torch.cat([data[:8], recon_batch.view(args.batch_size, 1, 28, 28)[:8]])
    save_image(comparison.cpu(), os.path.join(out, 'reconstruction.png'), nrow=8)
print('final loss: {:.4f}'.format(loss.item() / len(data)))
