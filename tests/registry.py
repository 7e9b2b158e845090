"""The registry of every public module class of mini_dl, for tests/test_registry.py.

``REGISTRY[name]`` is an :class:`Entry`: a hypothesis strategy of :class:`Case` (a module built
from constructor arguments drawn over the space torch documents, with valid float64 inputs and
targets for it), one fixed ``default`` case (the bad-input table and the mutation test start from
it), and what a bad input is for that module (the ranks and dimensions it checks, the dtypes it
legitimately accepts, with the reason). Inputs are continuous random values, so that ties
(MaxPool2d) and kinks (ReLU at 0, L1 at d = 0, Huber at |d| = delta) have probability 0 and
finite differences stay meaningful.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from hypothesis import assume
from hypothesis import strategies as st

import mini_dl as dl
import torch_twin

F64 = torch.float64
REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


@dataclass
class Case:
    """A module with valid inputs; ``reference`` None means ``torch_twin.to_torch(module)``."""
    module: dl.Module
    inputs: tuple
    reference: object = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"
                          for t in self.inputs)
        mode = "train" if self.module.training else "eval"
        return f"Case({self.module!r} [{mode}], inputs: {shown})"


@dataclass(frozen=True)
class Entry:
    cases: st.SearchStrategy
    default: Callable[[], Case]
    ranks: frozenset | None = None  # ranks of the first input accepted (None: any)
    checked_dims: Callable[[int], set] = field(default=lambda ndim: set())  # sizes it checks
    any_dtype: str | None = None  # why integer and complex inputs are legitimate, if they are
    examples: int = 10  # hypothesis draws per run: more where the argument space is larger
    int32: str | None = None  # why int32 indices (an integer first input) are legitimate


def generator(draw) -> torch.Generator:
    return torch.Generator().manual_seed(draw(st.integers(0, 2**20)))


def normal(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=F64)


def uniform(gen: torch.Generator, low: float, high: float, *shape: int) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=F64)


def randomize(module: dl.Module, gen: torch.Generator) -> dl.Module:
    """Random parameters (a norm's weight 1 and bias 0 hide a swapped formula) in float64."""
    module.double()
    for p in module.parameters():
        p.data.copy_(normal(gen, *p.data.shape))
    return module


SCALES = st.sampled_from([1.0, 10.0])  # 10: saturation, large logits, beyond a threshold
shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)
small = st.integers(1, 3)
pair_or_int = (lambda values: st.one_of(values, st.tuples(values, values)))


# -- elementwise activations, Identity, Dropout ----------------------------------------------

def elementwise(make: Callable[[object], dl.Module], shape=shapes):
    @st.composite
    def cases(draw):
        module = make(draw)
        return Case(module, (normal(generator(draw), *draw(shape)) * draw(SCALES),))
    return cases()


def default_elementwise(cls, **kwargs):
    return lambda: Case(cls(**kwargs), (normal(torch.Generator().manual_seed(0), 3, 4),))


ACTIVATIONS = {
    "ReLU": lambda draw: dl.ReLU(),
    "Tanh": lambda draw: dl.Tanh(),
    "Sigmoid": lambda draw: dl.Sigmoid(),
    "SiLU": lambda draw: dl.SiLU(),
    "LeakyReLU": lambda draw: dl.LeakyReLU(draw(st.floats(-1.0, 2.0))),
    "ELU": lambda draw: dl.ELU(draw(st.floats(0.1, 2.0))),
    "GELU": lambda draw: dl.GELU(draw(st.sampled_from(["none", "tanh"]))),
    "Softplus": lambda draw: dl.Softplus(draw(st.floats(0.5, 3.0)), draw(st.floats(0.5, 20.0))),
    "Identity": lambda draw: dl.Identity(*draw(st.lists(st.integers(), max_size=2)),
                                         unused=draw(st.floats(0, 1))),
}


@st.composite
def softmax_cases(draw, cls):
    shape = draw(shapes)
    rank = max(len(shape), 1)
    dim = draw(st.one_of(st.none(), st.integers(-rank, rank - 1)))
    return Case(cls(dim=dim), (normal(generator(draw), *shape) * draw(SCALES),))


@st.composite
def dropout_cases(draw):
    p = draw(st.one_of(st.just(0.0), st.floats(0.05, 0.9)))
    module = dl.Dropout(p)
    module.train(draw(st.booleans()))
    shape = draw(shapes)
    return dropout_case(module, normal(generator(draw), *shape))


def dropout_case(module: dl.Dropout, x: torch.Tensor) -> Case:
    """In training with p > 0, the reference is x * M / (1 - p) with mini_dl's mask M, redrawn
    as its docstring says (torch.rand >= p right after the seed that check_gradients sets before
    every forward, 0): torch.nn.Dropout draws other numbers from the same distribution."""
    if not (module.training and module.p > 0):
        return Case(module, (x,))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        keep = torch.rand(x.shape, dtype=F64) >= module.p
    return Case(module, (x,), reference=lambda value: value * keep / (1 - module.p))


# -- layers with parameters --------------------------------------------------------------------

@st.composite
def linear_cases(draw):
    gen = generator(draw)
    in_features, out_features = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    module = randomize(dl.Linear(in_features, out_features, bias=draw(st.booleans())), gen)
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return Case(module, (normal(gen, *lead, in_features),))


def default_linear() -> Case:
    gen = torch.Generator().manual_seed(0)
    return Case(randomize(dl.Linear(3, 2), gen), (normal(gen, 4, 3),))


def conv_fits(h: int, w: int, module: dl.Conv2d) -> bool:
    top, bottom, left, right = module._sides
    spans = [d * (k - 1) + 1 for d, k in zip(module.dilation, module.kernel_size)]
    if h + top + bottom < spans[0] or w + left + right < spans[1]:
        return False
    limit = {"reflect": 1, "circular": 0}.get(module.padding_mode)
    return limit is None or (max(top, bottom) <= h - limit and max(left, right) <= w - limit)


@st.composite
def conv_cases(draw):
    gen = generator(draw)
    groups = draw(st.integers(1, 2))
    in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    stride = draw(pair_or_int(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["valid", "same"]), pair_or_int(st.integers(0, 2))))
    assume(padding != "same" or stride in (1, (1, 1)))
    module = dl.Conv2d(in_channels, out_channels, draw(pair_or_int(st.integers(1, 3))),
                       stride=stride, padding=padding,
                       dilation=draw(pair_or_int(st.integers(1, 2))), groups=groups,
                       bias=draw(st.booleans()),
                       padding_mode=draw(st.sampled_from(["zeros", "reflect", "replicate",
                                                          "circular"])))
    h, w = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    assume(conv_fits(h, w, module))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    return Case(randomize(module, gen), (normal(gen, *batch, in_channels, h, w),))


def default_conv() -> Case:
    gen = torch.Generator().manual_seed(0)
    module = randomize(dl.Conv2d(2, 3, (2, 3), padding=1), gen)
    return Case(module, (normal(gen, 2, 2, 4, 5),))


@st.composite
def embedding_cases(draw):
    """Embedding over sizes, padding_idx (negative too), index shapes (0-dim too) and both index
    dtypes. Three things are by design not the derivative that finite differences measure, so
    tests/test_sparse.py checks them against torch.nn.Embedding instead: the padding row's
    gradient (0 where the padding index occurs: here it never does), scale_grad_by_freq (G /
    count) and max_norm (the forward renormalises rows in place)."""
    gen = generator(draw)
    num_embeddings, embedding_dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    padding_idx = draw(st.one_of(st.none(), st.integers(-num_embeddings, num_embeddings - 1)))
    assume(padding_idx is None or num_embeddings > 1)
    module = randomize(dl.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx), gen)
    rows = [k for k in range(num_embeddings) if k != module.padding_idx]
    positions = torch.randint(0, len(rows), draw(shapes), generator=gen)
    dtype = draw(st.sampled_from([torch.int64, torch.int32]))
    return Case(module, (torch.tensor(rows)[positions].to(dtype),))


def default_embedding() -> Case:
    gen = torch.Generator().manual_seed(0)
    module = randomize(dl.Embedding(5, 3, padding_idx=1), gen)
    return Case(module, (torch.tensor([[0, 2, 3], [3, 4, 0]]),))  # repeats; row 1 (padding) unused


class _SelfAttention(dl.MultiheadAttention):
    """Self-attention through one input (the registry's harness differentiates one input and
    one output): forward(x) = MultiheadAttention(x, x, x, need_weights=False)[0], backward the
    sum of the three input gradients. tests/test_attention.py checks the full interface."""
    def forward(self, x):
        return super().forward(x, x, x, None, False)[0]

    def backward(self, grad_output):
        grads = super().backward(grad_output)
        return None if grads is None else grads[0] + grads[1] + grads[2]


_SelfAttention.__name__ = "MultiheadAttention"


class _TorchSelfAttention(torch.nn.MultiheadAttention):
    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]


def attention_case(gen, embed_dim, num_heads, bias, batch_first, shape) -> Case:
    module = randomize(_SelfAttention(embed_dim, num_heads, bias=bias, batch_first=batch_first),
                       gen)
    reference = _TorchSelfAttention(embed_dim, num_heads, bias=bias, batch_first=batch_first,
                                    dtype=F64)
    return Case(module, (normal(gen, *shape, embed_dim),), reference)


@st.composite
def attention_cases(draw):
    gen = generator(draw)
    heads = draw(st.integers(1, 2))
    shape = draw(st.sampled_from([(3, 2), (2,), (1, 3)]))
    return attention_case(gen, heads * draw(st.integers(1, 2)), heads, draw(st.booleans()),
                          draw(st.booleans()), shape)


def default_attention() -> Case:
    return attention_case(torch.Generator().manual_seed(0), 4, 2, True, False, (3, 2))


def transformer_layer(gen, d_model, nhead, dim_feedforward, activation, norm_first, batch_first,
                      bias):
    """A TransformerEncoderLayer without dropout (finite differences need a fixed function),
    its parameters random."""
    return randomize(dl.TransformerEncoderLayer(
        d_model, nhead, dim_feedforward, dropout=0.0, activation=activation,
        norm_first=norm_first, batch_first=batch_first, bias=bias), gen)


@st.composite
def transformer_layer_options(draw):
    nhead = draw(st.integers(1, 2))
    return {"d_model": draw(st.sampled_from([2, 4] if nhead == 2 else [2, 3])), "nhead": nhead,
            "dim_feedforward": draw(st.integers(1, 4)),
            "activation": draw(st.sampled_from(["relu", "gelu"])),
            "norm_first": draw(st.booleans()), "batch_first": draw(st.booleans()),
            "bias": draw(st.booleans())}


TRANSFORMER_SHAPES = st.sampled_from([(2, 2), (3,), (2, 1)])  # (S, N) or (S,) unbatched


@st.composite
def transformer_layer_cases(draw):
    gen, options = generator(draw), draw(transformer_layer_options())
    module = transformer_layer(gen, **options)
    return Case(module, (normal(gen, *draw(TRANSFORMER_SHAPES), options["d_model"]),))


def default_transformer_layer() -> Case:
    gen = torch.Generator().manual_seed(0)
    module = transformer_layer(gen, 2, 2, 2, "relu", False, False, True)  # small: 52 values
    return Case(module, (normal(gen, 2, 2, 2),))


def transformer_encoder(gen, options, num_layers, final_norm) -> dl.TransformerEncoder:
    layer = dl.TransformerEncoderLayer(**options, dropout=0.0)
    norm = dl.LayerNorm(options["d_model"]) if final_norm else None
    return randomize(dl.TransformerEncoder(layer, num_layers, norm=norm), gen)  # layers differ


@st.composite
def transformer_encoder_cases(draw):
    gen, options = generator(draw), draw(transformer_layer_options())
    module = transformer_encoder(gen, options, draw(st.integers(1, 2)), draw(st.booleans()))
    return Case(module, (normal(gen, *draw(TRANSFORMER_SHAPES), options["d_model"]),))


def default_transformer_encoder() -> Case:
    gen = torch.Generator().manual_seed(0)
    options = {"d_model": 2, "nhead": 1, "dim_feedforward": 2, "norm_first": True}
    return Case(transformer_encoder(gen, options, 1, True), (normal(gen, 2, 2, 2),))


# -- pooling -----------------------------------------------------------------------------------

@st.composite
def pool_cases(draw, cls):
    kernel = draw(pair_or_int(st.integers(1, 3)))
    kernels = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    padding = draw(st.one_of(st.integers(0, min(kernels) // 2),
                             st.tuples(*[st.integers(0, k // 2) for k in kernels])))
    options = {"stride": draw(st.one_of(st.none(), pair_or_int(st.integers(1, 3)))),
               "padding": padding, "ceil_mode": draw(st.booleans())}
    if cls is dl.MaxPool2d:
        options["dilation"] = draw(pair_or_int(st.integers(1, 2)))
    else:
        options["count_include_pad"] = draw(st.booleans())
        options["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 4)))
    module = cls(kernel, **options)
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    x = normal(generator(draw), *batch, draw(small), draw(st.integers(1, 6)),
               draw(st.integers(1, 6)))
    try:  # torch's output size rule decides whether the windows fit
        output = torch_twin.to_torch(module)(x)
    except RuntimeError:
        assume(False)
    # a dilated window can lie in the padding alone: its maximum is -inf (mini_dl's as torch's),
    # and torch 2.13's MaxPool2d backward then corrupts memory (the process aborts)
    assume(bool(output.isfinite().all()))
    return Case(module, (x,))


@st.composite
def adaptive_cases(draw):
    size = st.integers(1, 3)
    output_size = draw(st.one_of(size, st.tuples(st.one_of(st.none(), size),
                                                 st.one_of(st.none(), size))))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    x = normal(generator(draw), *batch, draw(small), draw(st.integers(1, 5)),
               draw(st.integers(1, 5)))
    return Case(dl.AdaptiveAvgPool2d(output_size), (x,))


def default_pool(cls, *args, **kwargs):
    return lambda: Case(cls(*args, **kwargs), (normal(torch.Generator().manual_seed(0),
                                                      2, 2, 5, 5),))


# -- normalisation -----------------------------------------------------------------------------

EPS = st.sampled_from([1e-5, 1e-3, 0.1])


@st.composite
def batchnorm_cases(draw, cls):
    gen = generator(draw)
    channels = draw(small)
    affine, track = draw(st.booleans()), draw(st.booleans())
    module = cls(channels, eps=draw(EPS),
                 momentum=draw(st.one_of(st.none(), st.floats(0.0, 1.0))), affine=affine,
                 track_running_stats=track, bias=draw(st.booleans()))
    randomize(module, gen)
    if track:  # eval mode uses them: not 0 and 1
        module.running_mean.copy_(normal(gen, channels))
        module.running_var.copy_(uniform(gen, 0.5, 2.0, channels))
    module.train(draw(st.booleans()))
    spatial = [draw(st.integers(1, 3)) for _ in range(2 if cls is dl.BatchNorm2d else
                                                       draw(st.integers(0, 1)))]
    batch = draw(st.integers(1, 3))
    batch_statistics = module.training or not track
    assume(not batch_statistics or batch * math.prod(spatial) > 1)  # torch needs > 1 value
    return Case(module, (normal(gen, batch, channels, *spatial),))


def default_batchnorm(cls, *spatial):
    def make():
        gen = torch.Generator().manual_seed(0)
        return Case(randomize(cls(3), gen), (normal(gen, 4, 3, *spatial),))
    return make


@st.composite
def layernorm_cases(draw):
    gen = generator(draw)
    normalized = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    affine = draw(st.booleans())
    module = dl.LayerNorm(normalized[0] if len(normalized) == 1 and draw(st.booleans())
                          else tuple(normalized), eps=draw(EPS), elementwise_affine=affine,
                          bias=draw(st.booleans()))
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    assume(math.prod(normalized) > 1)  # one value per row: x_hat = 0, the gradient too
    return Case(randomize(module, gen), (normal(gen, *lead, *normalized),))


def default_layernorm() -> Case:
    gen = torch.Generator().manual_seed(0)
    return Case(randomize(dl.LayerNorm((2, 3)), gen), (normal(gen, 4, 2, 3),))


@st.composite
def groupnorm_cases(draw):
    gen = generator(draw)
    groups = draw(small)
    channels = groups * draw(small)
    module = dl.GroupNorm(groups, channels, eps=draw(EPS), affine=draw(st.booleans()),
                          bias=draw(st.booleans()))
    spatial = draw(st.lists(st.integers(1, 3), max_size=2))
    assume(channels // groups * math.prod(spatial) > 1)
    return Case(randomize(module, gen), (normal(gen, draw(small), channels, *spatial),))


def default_groupnorm() -> Case:
    gen = torch.Generator().manual_seed(0)
    return Case(randomize(dl.GroupNorm(2, 4), gen), (normal(gen, 3, 4, 2),))


# -- reshapes ----------------------------------------------------------------------------------

@st.composite
def flatten_cases(draw):
    shape = draw(st.lists(st.integers(1, 3), max_size=4))
    rank = max(len(shape), 1)
    start = draw(st.integers(-rank, rank - 1))
    end = draw(st.integers(-rank, rank - 1))
    assume(start % rank <= end % rank)
    return Case(dl.Flatten(start, end), (normal(generator(draw), *shape),))


@st.composite
def unflatten_cases(draw):
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    size = shape[dim]
    first = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
    sizes = [first, size // first]
    if draw(st.booleans()):
        sizes[draw(st.integers(0, 1))] = -1
    container = draw(st.sampled_from([tuple, list]))
    return Case(dl.Unflatten(dim, container(sizes)), (normal(generator(draw), *shape),))


# -- Sequential --------------------------------------------------------------------------------

@st.composite
def sequential_cases(draw):
    gen = generator(draw)
    front, children = [], []
    if draw(st.booleans()):  # a convolutional front: Conv2d, MaxPool2d, Flatten to 2 features
        front, x = [dl.Conv2d(1, 2, 2), dl.MaxPool2d(2), dl.Flatten()], normal(gen, 2, 1, 3, 3)
        width = 2
    else:
        width = draw(st.integers(1, 3))
        x = normal(gen, 2, width)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["Linear", "Tanh", "ReLU", "LayerNorm", "GELU", "Identity"]))
        if kind == "Linear":
            out = draw(st.integers(1, 3))
            children.append(dl.Linear(width, out, bias=draw(st.booleans())))
            width = out
        elif kind == "LayerNorm":
            assume(width > 1)
            children.append(dl.LayerNorm(width))
        else:
            children.append(getattr(dl, kind)())
    return Case(randomize(dl.Sequential(*front, *children), gen), (x,))


def default_sequential() -> Case:
    gen = torch.Generator().manual_seed(0)
    return Case(randomize(dl.Sequential(dl.Linear(3, 4), dl.Tanh(), dl.Linear(4, 2)), gen),
                (normal(gen, 5, 3),))


# -- losses --------------------------------------------------------------------------------------

@st.composite
def pointwise_cases(draw, cls):
    gen = generator(draw)
    shape = draw(shapes)
    options = {"reduction": draw(REDUCTIONS)}
    if cls is dl.HuberLoss:
        options["delta"] = draw(st.floats(0.2, 2.0))
    if cls is dl.SmoothL1Loss:
        options["beta"] = draw(st.one_of(st.just(0.0), st.floats(0.2, 2.0)))
    scale = draw(SCALES)
    return Case(cls(**options), (normal(gen, *shape) * scale, normal(gen, *shape) * scale))


def broadcast_weight(draw, gen, shape):
    """None, or a positive weight of a shape that broadcasts to ``shape``."""
    kind = draw(st.sampled_from(["none", "last", "full"] if shape else ["none", "full"]))
    if kind == "none":
        return None
    return uniform(gen, 0.2, 2.0, *(shape[-1:] if kind == "last" else shape))


@st.composite
def bce_cases(draw, cls):
    gen = generator(draw)
    shape = draw(shapes)
    options = {"weight": broadcast_weight(draw, gen, shape), "reduction": draw(REDUCTIONS)}
    if cls is dl.BCEWithLogitsLoss:
        if shape and draw(st.booleans()):
            options["pos_weight"] = uniform(gen, 0.2, 3.0, shape[-1])
        x = normal(gen, *shape) * draw(SCALES)
    else:
        x = uniform(gen, 0.05, 0.95, *shape)
    target = (torch.rand(shape, generator=gen, dtype=F64) if draw(st.booleans())
              else torch.randint(0, 2, shape, generator=gen).to(F64))
    return Case(cls(**options), (x, target))


def default_pointwise(cls, **kwargs):
    def make():
        gen = torch.Generator().manual_seed(0)
        x = uniform(gen, 0.1, 0.9, 4, 3) if cls is dl.BCELoss else normal(gen, 4, 3)
        return Case(cls(**kwargs), (x, torch.rand(4, 3, generator=gen, dtype=F64)))
    return make


@st.composite
def class_loss_cases(draw, cls):
    gen = generator(draw)
    classes = draw(st.integers(2, 4))
    batch = draw(st.sampled_from([(), (1,), (2,), (3,)]))
    spatial = tuple(draw(st.lists(st.integers(1, 2), max_size=2))) if batch else ()
    scores = normal(gen, *batch, classes, *spatial) * draw(SCALES)
    weight = uniform(gen, 0.2, 2.0, classes) if draw(st.booleans()) else None
    reduction = draw(REDUCTIONS)
    probabilities = cls is dl.CrossEntropyLoss and draw(st.booleans())
    if probabilities:
        target = normal(gen, *scores.shape).exp()
        target = target / target.sum(dim=1 if batch else 0, keepdim=True)
        ignore_index = -100
    else:
        target = torch.randint(0, classes, batch + spatial, generator=gen)
        ignore_index = draw(st.sampled_from([-100, 0, 1]))
        # every target ignored: the weighted mean is 0 / 0 (torch returns nan)
        assume(reduction != "mean" or bool((target != ignore_index).any()))
    options = {"weight": weight, "ignore_index": ignore_index, "reduction": reduction}
    if cls is dl.CrossEntropyLoss:
        options["label_smoothing"] = draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
    return Case(cls(**options), (scores, target))


def default_class_loss(cls):
    def make():
        gen = torch.Generator().manual_seed(0)
        weight = uniform(gen, 0.5, 2.0, 3)
        return Case(cls(weight), (normal(gen, 4, 3), torch.tensor([0, 2, 1, 2])))
    return make


# -- the registry ------------------------------------------------------------------------------

ANY_RANK = None
RESHAPE = "a reshape moves values of any dtype, as torch.nn's"
IDENTITY = "returns its input unchanged, of any dtype, as torch.nn.Identity"


def last(count: int = 1):
    return lambda ndim: set(range(ndim - count, ndim))


def channels(ndim: int) -> set:
    return {ndim - 3}  # (N, C, H, W) or (C, H, W)


def every_dim(ndim: int) -> set:
    return set(range(ndim))


REGISTRY: dict[str, Entry] = {
    **{name: Entry(elementwise(make), default_elementwise(getattr(dl, name)),
                   any_dtype=IDENTITY if name == "Identity" else None)
       for name, make in ACTIVATIONS.items()},
    "Softmax": Entry(softmax_cases(dl.Softmax), default_elementwise(dl.Softmax, dim=1),
                     ranks=frozenset(range(2, 6))),
    "LogSoftmax": Entry(softmax_cases(dl.LogSoftmax), default_elementwise(dl.LogSoftmax, dim=1),
                        ranks=frozenset(range(2, 6))),
    "Dropout": Entry(dropout_cases(), lambda: dropout_case(
        dl.Dropout(0.3), normal(torch.Generator().manual_seed(0), 3, 4))),
    "Linear": Entry(linear_cases(), default_linear, ranks=frozenset(range(1, 6)),
                    checked_dims=last()),
    "Embedding": Entry(embedding_cases(), default_embedding,
                       int32="int32 indices, as torch.nn.Embedding takes them"),
    "MultiheadAttention": Entry(attention_cases(), default_attention, ranks=frozenset({2, 3}),
                                checked_dims=last()),
    "TransformerEncoderLayer": Entry(transformer_layer_cases(), default_transformer_layer,
                                     ranks=frozenset({2, 3}), checked_dims=last(), examples=6),
    "TransformerEncoder": Entry(transformer_encoder_cases(), default_transformer_encoder,
                                ranks=frozenset({2, 3}), checked_dims=last(), examples=4),
    "Conv2d": Entry(conv_cases(), default_conv, ranks=frozenset({3, 4}), checked_dims=channels),
    "MaxPool2d": Entry(pool_cases(dl.MaxPool2d), default_pool(dl.MaxPool2d, 2, 1, padding=1),
                       ranks=frozenset({3, 4})),
    "AvgPool2d": Entry(pool_cases(dl.AvgPool2d), default_pool(dl.AvgPool2d, 3, 2, padding=1),
                       ranks=frozenset({3, 4})),
    "AdaptiveAvgPool2d": Entry(adaptive_cases(), default_pool(dl.AdaptiveAvgPool2d, (2, 3)),
                               ranks=frozenset({3, 4})),
    "BatchNorm1d": Entry(batchnorm_cases(dl.BatchNorm1d), default_batchnorm(dl.BatchNorm1d),
                         ranks=frozenset({2, 3}), checked_dims=lambda ndim: {1}),
    "BatchNorm2d": Entry(batchnorm_cases(dl.BatchNorm2d), default_batchnorm(dl.BatchNorm2d, 2, 2),
                         ranks=frozenset({4}), checked_dims=lambda ndim: {1}),
    # without a process group (as here) SyncBatchNorm computes BatchNorm's: checked as one
    "SyncBatchNorm": Entry(batchnorm_cases(dl.SyncBatchNorm),
                           default_batchnorm(dl.SyncBatchNorm, 2, 2),
                           ranks=frozenset(range(2, 6)), checked_dims=lambda ndim: {1}),
    "LayerNorm": Entry(layernorm_cases(), default_layernorm, ranks=frozenset(range(2, 6)),
                       checked_dims=last(2)),
    "GroupNorm": Entry(groupnorm_cases(), default_groupnorm, ranks=frozenset(range(2, 6)),
                       checked_dims=lambda ndim: {1}),
    "Flatten": Entry(flatten_cases(), default_elementwise(dl.Flatten), ranks=frozenset(range(2, 6)),
                     any_dtype=RESHAPE),
    "Unflatten": Entry(unflatten_cases(), default_elementwise(dl.Unflatten, dim=1,
                                                              unflattened_size=(2, 2)),
                       checked_dims=lambda ndim: {1}, ranks=frozenset(range(2, 6)),
                       any_dtype=RESHAPE),
    "Sequential": Entry(sequential_cases(), default_sequential, ranks=frozenset(range(1, 6)),
                        checked_dims=last()),
    **{name: Entry(pointwise_cases(getattr(dl, name)), default_pointwise(getattr(dl, name)),
                   ranks=frozenset({2}), checked_dims=every_dim)
       for name in ("MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss")},
    "BCELoss": Entry(bce_cases(dl.BCELoss), default_pointwise(dl.BCELoss),
                     ranks=frozenset({2}), checked_dims=every_dim),
    "BCEWithLogitsLoss": Entry(bce_cases(dl.BCEWithLogitsLoss),
                               default_pointwise(dl.BCEWithLogitsLoss, pos_weight=torch.full(
                                   (3,), 2.0, dtype=F64)), ranks=frozenset({2}),
                               checked_dims=every_dim),
    "CrossEntropyLoss": Entry(class_loss_cases(dl.CrossEntropyLoss),
                              default_class_loss(dl.CrossEntropyLoss), ranks=frozenset({2}),
                              checked_dims=every_dim),
    "NLLLoss": Entry(class_loss_cases(dl.NLLLoss), default_class_loss(dl.NLLLoss),
                     ranks=frozenset({2}), checked_dims=every_dim),
}

# modules with many constructor arguments (or target kinds) get more draws
WIDE = {"Conv2d": 40, "MaxPool2d": 25, "AvgPool2d": 25, "BatchNorm1d": 20, "BatchNorm2d": 20,
        "CrossEntropyLoss": 40, "NLLLoss": 30, "BCELoss": 25, "BCEWithLogitsLoss": 25,
        "Unflatten": 20, "Flatten": 20, "Embedding": 20}
REGISTRY.update((name, replace(REGISTRY[name], examples=count)) for name, count in WIDE.items())
