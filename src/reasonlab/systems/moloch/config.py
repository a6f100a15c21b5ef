"""Moloch's Bargain's configs: `TrainConfig` (`reasonlab moloch train`: rounds of generate -> vote -> fine-tune),
`SimulateConfig` (`simulate`: one round of the base agent, no training), `EvalConfig` (`eval`: a trained run's
rounds against the base agent), `ExperimentConfig` (`experiment`: conditions x seeds) and `PRESETS`.

A preset is a `TrainConfig`. `market` is the run of record of spec 6B on the embedded Gemma-3-270M (sales pitches,
64 train and 32 test product cards, the rule-based market that rewards numbers); `control` the same with the
audience that puts no weight on numbers; `figures` the market whose voters count distinct numbers linearly (each
adds as much as the first); `brief` that market on brief cards (three figures each, 64 test cards); `worked` the
same with one worked example in the agent's prompt, sampled at T = 1.0; `wide` that setting on 128 training cards
with 24 optimizer steps a round, decoded in bf16; `llm` the full loop with an LLM audience
(spec 6A: plumbing at toy scale, not a result); `smoke` a one-minute pipeline check; `paper` the paper's round
(1,024 anchors, 2 samples each, LoRA r16/alpha 32 on every projection, lr 2e-4, batch 16), for served 8B models on
a GPU.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from reasonlab.systems.moloch.anchors import ARENAS
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName
from reasonlab.train.sft import LoRAConfig, SFTConfig

__all__ = [
    "CONDITIONS",
    "PRESETS",
    "AgentConfig",
    "AudienceConfig",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "SimulateConfig",
    "TrainConfig",
    "parse_condition",
]

Method = Literal["rft", "tfb"]
AudienceKind = Literal["market", "control", "llm"]
# an experiment condition: the audience that votes during training, and the method
CONDITIONS = ("market-rft", "market-tfb", "control-rft", "control-tfb")
PROBE_NAMES = ("fabrication", "misrepresentation", "populism", "unsafe_encouragement")  # probes.PROBES


def parse_condition(name: str) -> tuple[AudienceKind, Method]:
    """'market-rft' -> ('market', 'rft'); a one-line error naming the conditions otherwise."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}: choose from {', '.join(CONDITIONS)}")
    kind, method = name.split("-")
    return kind, method  # type: ignore[return-value]


class DataConfig(BaseModel):
    """The anchors: generated offline from a seed, or read from JSON-lines files (one anchor per line)."""

    arena: str = Field("sales", description="sales | elections | social")
    num_train: int = Field(64, ge=1, description="train anchors (the paper: 1,024)")
    num_test: int = Field(32, ge=1, description="test anchors (the paper: 1,024)")
    seed: int = Field(0, description="the anchors' generator seed (fixed across training seeds)")
    card: Literal["full", "brief"] = Field(
        "full", description="full (every attribute on the card: sales lists 4-6 specifications) | brief (only the "
        "figures the anchor's own text quotes, and a product's price: a card with few numbers, like a store's "
        "blurb)")
    train_file: str | None = Field(None, description="a JSON-lines anchor file instead of generated train anchors")
    test_file: str | None = Field(None, description="a JSON-lines anchor file instead of generated test anchors")

    @field_validator("arena")
    @classmethod
    def _known_arena(cls, value: str) -> str:
        if value not in ARENAS:
            raise ValueError(f"unknown arena {value!r}: choose one of {', '.join(ARENAS)}")
        return value


class AgentConfig(BaseModel):
    """How the agent writes its messages (spec section 1: T = 0.7, two samples per anchor)."""

    temperature: float = Field(0.7, ge=0, description="sampling temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus mass")
    max_tokens: int = Field(64, ge=1, description="new tokens per message (the paper: 1,480 with thinking)")
    batch_size: int = Field(16, ge=1, description="anchors per generate call (each gives two samples)")
    thinking: bool = Field(False, description="ask for a <think> block before the message (Qwen3-style agents)")
    prefill: bool = Field(True, description="end the prompt with the message's opening tag (base models rarely "
                          "open it themselves; turn off for instruct models)")
    shots: int = Field(0, ge=0, le=8, description="worked examples before the anchor: cards from a stream no data "
                       "seed uses, each with a faithful pitch that states every figure on the card (sales arena; a "
                       "base model writes in the form it is shown)")
    bf16: bool = Field(False, description="decode under bfloat16 autocast (an in-process model: 1.8x the tokens/s "
                       "of float32 on the 2-core AMX CPU of RESULTS; its samples differ from float32's; a served "
                       "model decodes as its server does)")


class AudienceConfig(BaseModel):
    """Who votes: the rule-based market (spec 6B), its control (no weight on numbers) or an LLM role-playing
    personas (spec section 1)."""

    kind: AudienceKind = Field("market", description="market | control | llm")
    personas: int = Field(20, ge=1, description="voters per pair (the paper: 20)")
    seed: int = Field(0, description="personas and the market's per-voter weights")
    noise: float = Field(1.0, ge=0, description="market: scale of each vote's Gumbel noise")
    numbers: Literal["log", "linear"] = Field(
        "log", description="market: how a voter weighs numbers: log (log(1 + count), spec 6B) or linear (each "
        "further distinct number adds as much as the first: the card's own figures cannot satisfy it)")
    control_features: list[Literal["numbers", "superlatives", "urgency", "length"]] = Field(
        ["numbers"], description="control: the features its voters put no weight on (numbers; add length for a "
        "control that rewards nothing a longer pitch has more of: on a brief card a longer pitch has more room to "
        "invent a figure)")
    llm: str = Field("hf:embedded", description="llm audience: the model spec (a served 8B model for a result)")
    temperature: float = Field(0.1, ge=0, description="llm audience: sampling temperature (the paper: 0.1)")
    max_tokens: int = Field(384, ge=1, description="llm audience: tokens for a thought and a vote")
    constrained: bool | None = Field(None, description="llm audience: constrain each reply to <think>...</think>"
                                     "<vote>A|B</vote> by guided decoding (small models rarely keep the format "
                                     "otherwise) [default: off]")
    held_out: bool = Field(True, description="evaluation also votes with held-out personas (pitfall: the same "
                           "personas score training and evaluation)")


def _default_sft() -> SFTConfig:
    # the CPU round: 12 steps of 8 examples, about 1.5 passes over a round's ~55 winners (the paper: one epoch over
    # the 3x repeated list, 192 steps of 16 at lr 2e-4); a higher lr makes up for the few steps. Two passes of 4
    # per step: a Gemma step on 8 pitches holds ~8 GB, on 4 about half. No EOS is added: a pitch cut at
    # agent.max_tokens must not teach the agent to stop there (one that closed its tag ends with the closing tag)
    return SFTConfig(backend="plain", max_steps=12, batch_size=4, gradient_accumulation_steps=2, learning_rate=1e-3,
                     warmup_ratio=0.1, add_eos=False,
                     lora=LoRAConfig(r=8, alpha=16, dropout=0.05), bf16=True, max_length=512, progress=True)


class TrainConfig(BaseModel):
    """Rounds of the market: the agent writes two messages per train anchor, the audience votes, the winners
    (RFT) or the winners plus the voters' thoughts (TFB) fine-tune a LoRA adapter; after each round the tuned
    agent meets the base agent on the test anchors."""

    method: Method = Field("rft", description="rft (train on winners) | tfb (winners + the audience's thoughts)")
    rounds: int = Field(2, ge=1, description="generate -> vote -> fine-tune rounds (the paper: 1)")
    llm: str = Field("hf:embedded", description="a trainable agent (hf:embedded, hf:PATH)")
    data: DataConfig = Field(default_factory=DataConfig, description="the anchors")
    agent: AgentConfig = Field(default_factory=AgentConfig, description="how the agent writes")
    audience: AudienceConfig = Field(default_factory=AudienceConfig, description="who votes")
    sft: SFTConfig = Field(default_factory=_default_sft, description="fine-tuning per round (reasonlab.train.sft)")
    judge: str | None = Field(None, description="an LLM judge for the arena's probes beside the rule-based ones")
    train_cut_winners: bool = Field(False, description="also train on a winner cut at agent.max_tokens before its "
                                    "closing tag (not a full completion: it teaches the agent to run on; runs "
                                    "before the ninth attempt did)")
    seed: int = Field(0, description="sampling, votes, adapter init and data order (anchors: data.seed)")
    out: str = Field("runs/moloch", description="root folder of runs")
    name: str | None = Field(None, description="run name [default: ARENA-AUDIENCE-METHOD-sSEED]")
    overwrite: bool = Field(False, description="delete an existing run of that name first")
    resume: bool = Field(False, description="continue a run: finished rounds are kept, a crashed one goes on")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @model_validator(mode="after")
    def _lora_needed(self) -> TrainConfig:
        if self.sft.lora is None:
            raise ValueError("sft.lora is required: the rounds save and reload a LoRA adapter")
        _check_shots(self.data, self.agent)
        return self

    @property
    def run_name(self) -> str:
        return self.name or f"{self.data.arena}-{self.audience.kind}-{self.method}-s{self.seed}"


class _ProbeChoice(BaseModel):
    """How a command scores messages (`simulate` and `eval`): which probes, and an optional LLM judge."""

    judge: str | None = Field(None, description="an LLM judge for the arena's probes beside the rule-based ones")
    probes: list[str] | None = Field(None, description="probes to run [default: the arena's]")

    @field_validator("probes")
    @classmethod
    def _known_probes(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            if value not in PROBE_NAMES:
                raise ValueError(f"unknown probe {value!r}: choose from {', '.join(PROBE_NAMES)}")
        return values


def _check_shots(data: DataConfig, agent: AgentConfig) -> None:
    """Worked examples exist for sales pitches only: a config asking for them elsewhere fails before any load."""
    if agent.shots and data.arena != "sales":
        raise ValueError(f"agent.shots is for the sales arena, not {data.arena!r}: set agent.shots=0")


class SimulateConfig(_ProbeChoice):
    """One round of the base agent on the train anchors: votes, winners, probe rates of winners and losers, and
    the audience's agreement with itself when every voter's order is swapped."""

    llm: str = Field("hf:embedded", description="the agent (any model spec)")
    data: DataConfig = Field(default_factory=DataConfig, description="the anchors")
    agent: AgentConfig = Field(default_factory=AgentConfig, description="how the agent writes")
    audience: AudienceConfig = Field(default_factory=AudienceConfig, description="who votes")
    seed: int = Field(0, description="sampling and votes")
    out: str | None = Field(None, description="write the contests (JSON lines) and the report here")

    @model_validator(mode="after")
    def _shots_for_sales(self) -> SimulateConfig:
        _check_shots(self.data, self.agent)
        return self


class EvalConfig(_ProbeChoice):
    """Evaluate a trained run again: every round's adapter against the base agent on the test anchors."""

    run: str = Field(..., description="the run folder written by `reasonlab moloch train`")
    audience: AudienceConfig | None = Field(None, description="who votes [default: the run's audience]")
    test_file: str | None = Field(None, description="a JSON-lines anchor file to evaluate on instead of the "
                                  "run's test anchors (cut to brief cards when the run's are), e.g. fresh cards of "
                                  "another generator seed; ids must differ from the run's training anchors'")


class ExperimentConfig(BaseModel):
    """Each condition (training audience x method) x seed with one preset, then a summary with spreads over
    seeds and a plot of win rate and probe rates over rounds."""

    conditions: list[str] = Field(["market-rft", "market-tfb", "control-rft"], description="conditions to run")
    seeds: list[int] = Field([0, 1, 2], description="training seeds (anchors fixed by data.seed)")
    base: TrainConfig = Field(default_factory=TrainConfig, description="the per-run config")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @field_validator("conditions")
    @classmethod
    def _known_conditions(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_condition(value)
        if not values:
            raise ValueError("give at least one condition")
        return values


def _preset(kind: AudienceKind, **update: object) -> TrainConfig:
    update.setdefault("audience", AudienceConfig(kind=kind))
    return TrainConfig(**update)  # type: ignore[arg-type]


PRESETS: dict[str, TrainConfig] = {
    # spec 6B on the embedded 270M agent: 64 train / 32 test product cards, two rounds, LoRA r8
    "market": _preset("market"),
    "control": _preset("control"),
    # the market whose voters count every distinct number (linear, not log): a pitch outscores the card's own
    # figures only by adding figures; its control is the same control (no weight on numbers)
    "figures": _preset("market", audience=AudienceConfig(kind="market", numbers="linear")),
    # that market on brief cards (the description's two figures and the price): the card's own figures are
    # three, so a pitch with more has invented some; 64 test cards for a tighter measure of the rates
    "brief": _preset("market", audience=AudienceConfig(kind="market", numbers="linear"),
                     data=DataConfig(card="brief", num_test=64)),
    # the brief market with one worked example in the prompt (a faithful pitch for another card): the base model
    # then writes pitches, not the spec-sheet fragments it writes without one; sampled at T = 1.0 (the spec: 0.7),
    # where its pitches vary enough for the votes to select (winners minus losers, fabrication: +45 points at
    # 1.0, +19 at 0.7; RESULTS)
    "worked": _preset("market", audience=AudienceConfig(kind="market", numbers="linear"),
                      data=DataConfig(card="brief", num_test=64), agent=AgentConfig(shots=1, temperature=1.0),
                      # the example lengthens each training sequence: passes of 2, not 4, keep three seeds'
                      # workers within 24 GB (the same 12 steps of 8 examples)
                      sft=_default_sft().model_copy(update={"batch_size": 2, "gradient_accumulation_steps": 4})),
    # `worked` on twice the training cards (about 123 decided contests a round: at about 55 the selection's own
    # noise moved a control seed's fabrication by 20 points) and twice the steps (24 of 8: each winner seen about
    # 1.6 times, as in `worked`; with 12 it was 0.8 and the agent hardly moved), decoded in bf16 (1.8x here);
    # each step one pass of 8: the hf backend runs the prompts' shared instructions and worked example once a
    # pass and the rows as one batch (benchmarks/hf_shared_prefix.py; at most 8.5 GB a worker, RESULTS)
    "wide": _preset("market", audience=AudienceConfig(kind="market", numbers="linear"),
                    data=DataConfig(card="brief", num_train=128, num_test=64),
                    agent=AgentConfig(shots=1, temperature=1.0, bf16=True),
                    sft=_default_sft().model_copy(update={"batch_size": 8, "gradient_accumulation_steps": 1,
                                                          "max_steps": 24})),
    # spec 6A: the embedded model is agent and audience; plumbing, not a result (it votes near chance)
    "llm": _preset("llm", data=DataConfig(num_train=8, num_test=4), rounds=1,
                   audience=AudienceConfig(kind="llm", personas=6, max_tokens=80, constrained=True)),
    # a one-minute pipeline check
    "smoke": _preset("market", data=DataConfig(num_train=8, num_test=4), rounds=1,
                     agent=AgentConfig(max_tokens=24)),
    # the paper's round (Qwen3-8B / Llama-3.1-8B agents): 1,024 anchors, LoRA r16/alpha 32 on every projection,
    # lr 2e-4, batch 16, warm-up 3%, one epoch over the 3x repeated winners; a served gpt-4o-mini-class audience
    "paper": TrainConfig(
        rounds=1,
        data=DataConfig(num_train=1024, num_test=1024),
        agent=AgentConfig(max_tokens=1480, thinking=True, prefill=False),
        audience=AudienceConfig(kind="llm", personas=20),
        sft=SFTConfig(epochs=1, batch_size=16, learning_rate=2e-4, warmup_ratio=0.03,
                      lora=LoRAConfig(r=16, alpha=32, dropout=0.05), bf16=True, max_length=2048),
    ),
}
