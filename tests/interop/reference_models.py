"""PyTorch modules for the interop tests, written here to match the published model classes of
SASRec.pytorch (pmixer/SASRec.pytorch: the root model.py before 2025 = "legacy"; python/model.py with
norm_first True / False) and caser_pytorch (graytowne/caser_pytorch: caser.py): the same state_dict
names and shapes and the same eval-mode forward, so that a checkpoint of theirs loads here and scores
the same. Kept small: only what the tests call (log2feats / predict, Caser's forward for prediction).
"""
import torch


class PointWiseFeedForward(torch.nn.Module):
    # conv1 / conv2 are Conv1d(d, d, 1) over the time axis; legacy adds its input back inside
    def __init__(self, d, dropout, inner_residual):
        super().__init__()
        self.conv1 = torch.nn.Conv1d(d, d, kernel_size=1)
        self.dropout1 = torch.nn.Dropout(p=dropout)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv1d(d, d, kernel_size=1)
        self.dropout2 = torch.nn.Dropout(p=dropout)
        self.inner_residual = inner_residual

    def forward(self, x):  # x: [B, L, d]
        y = self.dropout2(self.conv2(self.relu(self.dropout1(self.conv1(x.transpose(-1, -2)))))).transpose(-1, -2)
        return y + x if self.inner_residual else y


class SASRec(torch.nn.Module):
    def __init__(self, item_num, d, blocks, heads, maxlen, variant, dropout=0.0, pos_rows=None):
        super().__init__()
        assert variant in ("legacy", "norm-first", "post-ln")
        self.variant = variant
        self.item_emb = torch.nn.Embedding(item_num + 1, d, padding_idx=0)
        self.pos_emb = torch.nn.Embedding(pos_rows or maxlen + 1, d, padding_idx=0)
        self.emb_dropout = torch.nn.Dropout(p=dropout)
        self.attention_layernorms = torch.nn.ModuleList()
        self.attention_layers = torch.nn.ModuleList()
        self.forward_layernorms = torch.nn.ModuleList()
        self.forward_layers = torch.nn.ModuleList()
        self.last_layernorm = torch.nn.LayerNorm(d, eps=1e-8)
        for _ in range(blocks):
            self.attention_layernorms.append(torch.nn.LayerNorm(d, eps=1e-8))
            self.attention_layers.append(torch.nn.MultiheadAttention(d, heads, dropout))
            self.forward_layernorms.append(torch.nn.LayerNorm(d, eps=1e-8))
            self.forward_layers.append(PointWiseFeedForward(d, dropout, inner_residual=variant == "legacy"))

    def log2feats(self, log_seqs):  # log_seqs: LongTensor [B, L], left-padded with 0
        seqs = self.item_emb(log_seqs) * self.item_emb.embedding_dim ** 0.5
        B, L = log_seqs.shape
        poss = torch.arange(1, L + 1).unsqueeze(0).expand(B, -1) * (log_seqs != 0)
        seqs = self.emb_dropout(seqs + self.pos_emb(poss))
        mask = ~torch.tril(torch.ones((L, L), dtype=torch.bool))
        for i in range(len(self.attention_layers)):
            seqs = seqs.transpose(0, 1)  # MultiheadAttention wants [L, B, d]
            if self.variant == "legacy":
                q = self.attention_layernorms[i](seqs)
                a, _ = self.attention_layers[i](q, seqs, seqs, attn_mask=mask)
                seqs = (q + a).transpose(0, 1)
                seqs = self.forward_layers[i](self.forward_layernorms[i](seqs))
            elif self.variant == "norm-first":
                x = self.attention_layernorms[i](seqs)
                a, _ = self.attention_layers[i](x, x, x, attn_mask=mask)
                seqs = (seqs + a).transpose(0, 1)
                seqs = seqs + self.forward_layers[i](self.forward_layernorms[i](seqs))
            else:
                a, _ = self.attention_layers[i](seqs, seqs, seqs, attn_mask=mask)
                seqs = self.attention_layernorms[i](seqs + a).transpose(0, 1)
                seqs = self.forward_layernorms[i](seqs + self.forward_layers[i](seqs))
        return self.last_layernorm(seqs)

    def predict(self, log_seqs, item_indices):  # -> [B, I] scores of the last position
        h = self.log2feats(log_seqs)[:, -1, :]
        return self.item_emb(item_indices).matmul(h.unsqueeze(-1)).squeeze(-1) if item_indices.dim() == 2 \
            else h.matmul(self.item_emb(item_indices).T)


class Caser(torch.nn.Module):
    # caser_pytorch's defaults: ac_conv = ac_fc = relu
    def __init__(self, num_users, num_items, d, L, nh, nv, dropout=0.0):
        super().__init__()
        self.user_embeddings = torch.nn.Embedding(num_users, d)
        self.item_embeddings = torch.nn.Embedding(num_items, d)
        self.conv_v = torch.nn.Conv2d(1, nv, (L, 1))
        self.conv_h = torch.nn.ModuleList([torch.nn.Conv2d(1, nh, (h, d)) for h in range(1, L + 1)])
        self.fc1 = torch.nn.Linear(nv * d + nh * L, d)
        self.W2 = torch.nn.Embedding(num_items, 2 * d)
        self.b2 = torch.nn.Embedding(num_items, 1)
        self.dropout = torch.nn.Dropout(dropout)
        self.nv_d = nv * d

    def forward(self, seq_var, user_var, item_var):  # [B, L], [B], [B, I] -> [B, I]
        E = self.item_embeddings(seq_var).unsqueeze(1)  # [B, 1, L, d]
        u = self.user_embeddings(user_var)
        out_v = self.conv_v(E).view(-1, self.nv_d)  # no activation on the vertical filters
        out_h = []
        for conv in self.conv_h:
            c = torch.relu(conv(E).squeeze(3))  # [B, nh, L - h + 1]
            out_h.append(torch.nn.functional.max_pool1d(c, int(c.size(2))).squeeze(2))
        z = torch.relu(self.fc1(self.dropout(torch.cat([out_v] + out_h, 1))))
        x = torch.cat([z, u], 1)
        return (self.W2(item_var) * x.unsqueeze(1)).sum(-1) + self.b2(item_var).squeeze(-1)
