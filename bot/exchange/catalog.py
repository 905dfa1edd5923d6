"""What of Hyperliquid's API the paper exchange serves, and what it refuses by name.

One table per surface (``/exchange`` actions, ``/info`` types, websocket channels). Dispatch
reads it: a Hyperliquid action, info type or channel that is not supported is refused with
"Unsupported by the paper exchange: ..." naming it and saying why, never accepted and ignored;
a name Hyperliquid does not know gets Hyperliquid's own deserialization error. The tables in
docs/bot-and-exchange.md are rendered from these (:func:`markdown`) and a test keeps them equal.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One name of Hyperliquid's API: served (``supported``) or refused, and in what way."""

    supported: bool
    note: str


def _yes(note: str = "") -> Entry:
    return Entry(True, note)


def _no(why: str) -> Entry:
    return Entry(False, why)


NO_SPOT = "no spot markets or balances"
NO_VAULTS = "no vaults or subaccounts"
NO_STAKING = "no staking"

ACTIONS: dict[str, Entry] = {
    # L1 actions (signed by the account or one of its API wallets)
    "order": _yes("Gtc/Ioc/Alo limits, tp/sl triggers (market or limit), reduce-only, cloid (a cloid an "
                  "earlier order of the account carries is refused), groupings "
                  "na/normalTpsl/positionTpsl (grouped TP/SL answer `waitingForFill` while their entry rests, "
                  "else `waitingForTrigger`; an entry's TP/SL are placed only once it fully fills and are "
                  "canceled with it, partly filled or not; those of an IOC entry that filled in part are "
                  "refused; a normalTpsl whose first order is a tp/sl trigger (no entry) is refused by name, "
                  "every order of it, and so is an entry's TP/SL that is not a reduce-only tp/sl trigger on the closing "
                  "side of the entry; a positionTpsl must be a reduce-only tp/sl trigger on the closing side of an open "
                  "position, else refused; of size 0 it covers the whole position), builder fee "
                  "once approved; priority grouping refused; a limit "
                  "or trigger price more than 80% from the reference price (the mark) refused; tp/sl trigger on the "
                  "mark"),
    "cancel": _yes(),
    "cancelByCloid": _yes(),
    "modify": _yes("the new order is checked first: refused, the original stays resting; same asset only; "
                   "a modify of a normalTpsl entry whose TP/SL wait for its fill, or of such a waiting TP/SL, is "
                   "refused by name (`Unsupported by the paper exchange: ...`: Hyperliquid does not document it)"),
    "batchModify": _yes("each modify as `modify`"),
    "scheduleCancel": _yes("fires at its time (not on the market tick); at least 5 s ahead; 10 triggers a "
                           "day; the $1M volume requirement is a setting (paper default 0)"),
    "updateLeverage": _yes("cross or isolated; switching the type with an open position is refused; "
                           "lowering it below what the open position (and orders) can post is refused"),
    "updateIsolatedMargin": _yes("adds or removes margin of an isolated position"),
    "noop": _yes("marks the nonce used"),
    "topUpIsolatedOnlyMargin": _no("isolated-only markets are not simulated"),
    "twapOrder": _no("no TWAP orders"),
    "twapCancel": _no("no TWAP orders"),
    "reserveRequestWeight": _no("the request cap grows with traded volume only"),
    "setReferrer": _no("no referrals"),
    "createSubAccount": _no(NO_VAULTS),
    "subAccountTransfer": _no(NO_VAULTS),
    "subAccountSpotTransfer": _no(NO_VAULTS),
    "vaultTransfer": _no(NO_VAULTS),
    "createVault": _no(NO_VAULTS),
    "multiSig": _no("no multi-sig accounts"),
    "spotDeploy": _no(NO_SPOT),
    "perpDeploy": _no("no market deployment"),
    "CSignerAction": _no("no validators"),
    "CValidatorAction": _no("no validators"),
    "validatorL1Stream": _no("no validators"),
    "gossipPriorityBid": _no("no validators"),
    "evmUserModify": _no("no HyperEVM"),
    "agentEnableDexAbstraction": _no("one perp dex only"),
    "agentSetAbstraction": _no("one perp dex only"),
    # user-signed actions (signed by the account itself, EIP-712)
    "approveAgent": _yes("named API wallets (3) and one unnamed, valid_until, revocation by re-approval"),
    "approveBuilderFee": _yes("max fee rate up to 0.1%; the builder must hold at least 100 USDC of perps "
                              "account value (so never an API wallet)"),
    "usdSend": _yes("perp USDC to another address (created if new); never to an API wallet (it holds no funds)"),
    "withdraw3": _yes("the USDC leaves the exchange; $1 fee"),
    "usdClassTransfer": _no(NO_SPOT),
    "spotSend": _no(NO_SPOT),
    "sendAsset": _no(NO_SPOT),
    "sendToEvmWithData": _no("no HyperEVM"),
    "cDeposit": _no(NO_STAKING),
    "cWithdraw": _no(NO_STAKING),
    "tokenDelegate": _no(NO_STAKING),
    "convertToMultiSigUser": _no("no multi-sig accounts"),
    "userDexAbstraction": _no("one perp dex only"),
    "userSetAbstraction": _no("one perp dex only"),
}

INFO_TYPES: dict[str, Entry] = {
    "meta": _yes(),
    "spotMeta": _yes("USDC only, no spot markets"),
    "allMids": _yes(),
    "metaAndAssetCtxs": _yes("no funding or open interest (zero)"),
    "l2Book": _yes("full precision; nSigFigs/mantissa aggregation refused"),
    "candleSnapshot": _yes("intervals 1m..1w; 1M refused"),
    "clearinghouseState": _yes(),
    "spotClearinghouseState": _yes("no spot balances"),
    "openOrders": _yes(),
    "frontendOpenOrders": _yes(),
    "historicalOrders": _yes(),
    "orderStatus": _yes(),
    "userFills": _yes("aggregateByTime supported"),
    "userFillsByTime": _yes("aggregateByTime supported"),
    "userNonFundingLedgerUpdates": _yes("usdSend and withdraw3"),
    "userRateLimit": _yes(),
    "userFees": _yes("base tier"),
    "userRole": _yes("user, agent or missing"),
    "extraAgents": _yes("named API wallets"),
    "maxBuilderFee": _yes(),
    "exchangeStatus": _yes(),
    "spotMetaAndAssetCtxs": _no(NO_SPOT),
    "perpDexs": _no("one perp dex only"),
    "allPerpMetas": _no("one perp dex only"),
    "perpDexLimits": _no("one perp dex only"),
    "perpDexStatus": _no("one perp dex only"),
    "fundingHistory": _no("no funding"),
    "userFunding": _no("no funding"),
    "predictedFundings": _no("no funding"),
    "perpsAtOpenInterestCap": _no("no open-interest caps"),
    "perpDeployAuctionStatus": _no("no market deployment"),
    "spotDeployState": _no(NO_SPOT),
    "tokenDetails": _no(NO_SPOT),
    "activeAssetData": _no("not simulated"),
    "portfolio": _no("no portfolio history"),
    "subAccounts": _no(NO_VAULTS),
    "vaultDetails": _no(NO_VAULTS),
    "userVaultEquities": _no(NO_VAULTS),
    "referral": _no("no referrals"),
    "delegations": _no(NO_STAKING),
    "delegatorSummary": _no(NO_STAKING),
    "delegatorHistory": _no(NO_STAKING),
    "delegatorRewards": _no(NO_STAKING),
    "userTwapSliceFills": _no("no TWAP orders"),
    "userToMultiSigSigners": _no("no multi-sig accounts"),
    "userDexAbstraction": _no("one perp dex only"),
    "userAbstraction": _no("one perp dex only"),
}

WS_CHANNELS: dict[str, Entry] = {
    "allMids": _yes(),
    "l2Book": _yes("pushed at most every 0.5 s when it changed; nSigFigs/mantissa refused"),
    "trades": _yes("this exchange's own fills (the synthetic book's side is 0x0)"),
    "candle": _yes(),
    "bbo": _yes("pushed when it changed"),
    "orderUpdates": _yes(),
    "userFills": _yes("snapshot (isSnapshot) then stream; aggregateByTime supported"),
    "userEvents": _yes("fills (channel \"user\")"),
    "webData2": _yes("clearinghouseState, openOrders, meta, assetCtxs, agent, serverTime"),
    "userNonFundingLedgerUpdates": _yes("snapshot then stream"),
    "clearinghouseState": _yes("{dex, user, clearinghouseState}: snapshot, then pushed when it changed"),
    "openOrders": _yes("{dex, user, orders} (frontendOpenOrders rows): snapshot, then pushed when they changed"),
    "activeAssetCtx": _yes(),
    "notification": _no("no notifications are generated"),
    "webData3": _no("use webData2"),
    "twapStates": _no("no TWAP orders"),
    "userTwapSliceFills": _no("no TWAP orders"),
    "userTwapHistory": _no("no TWAP orders"),
    "userFundings": _no("no funding"),
    "activeAssetData": _no("not simulated"),
}


def refusal(surface: str, name: str) -> str | None:
    """Why ``name`` is refused on ``surface`` ("action", "info type", "subscription"), or None
    when it is served or is not a Hyperliquid name at all (the caller answers that itself)."""
    table = {"action": ACTIONS, "info type": INFO_TYPES, "subscription": WS_CHANNELS}[surface]
    entry = table.get(name)
    if entry is None or entry.supported:
        return None
    return f"Unsupported by the paper exchange: {surface} {name} ({entry.note})."  # paper


def markdown() -> str:
    """The three tables of docs/bot-and-exchange.md, as rendered from this module."""
    out: list[str] = []
    for title, table in (("`/exchange` action", ACTIONS), ("`/info` type", INFO_TYPES),
                         ("websocket channel", WS_CHANNELS)):
        out += [f"| {title} | paper exchange | notes |", "|---|---|---|"]
        for name, entry in sorted(table.items(), key=lambda kv: (not kv[1].supported, kv[0].lower())):
            out.append(f"| `{name}` | {'supported' if entry.supported else 'refused'} | {entry.note} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
