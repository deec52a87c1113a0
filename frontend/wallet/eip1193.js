// fedchain dashboard <-> browser wallet (EIP-1193). Every call resolves (never rejects) with
// {result} or {error: {code, message, data}}, so the Python side always gets an answer.
(() => {
  if (window.fedchainWallet) return;
  const provider = () => (typeof window.ethereum === "object" && window.ethereum !== null ? window.ethereum : null);
  const failure = (e) => ({
    error: {
      code: e && e.code !== undefined ? e.code : -1,
      message: String((e && e.message) || e),
      data: e && e.data !== undefined ? e.data : null,
    },
  });
  let subscribed = false;
  window.fedchainWallet = {
    available: () => provider() !== null,
    async request(method, params) {
      const eth = provider();
      if (!eth) return { error: { code: "NO_WALLET", message: "no browser wallet (window.ethereum)" } };
      try {
        return { result: await eth.request({ method, params: params || [] }) };
      } catch (e) {
        return failure(e);
      }
    },
    // The state a page load starts from: authorized accounts (eth_accounts never prompts) and the chain id.
    async state() {
      const eth = provider();
      if (!eth) return { available: false, accounts: [], chainId: null };
      const accounts = await this.request("eth_accounts", []);
      const chain = await this.request("eth_chainId", []);
      return { available: true, accounts: accounts.result || [], chainId: chain.result || null };
    },
    // Forward the wallet's events to the page's Python handlers (NiceGUI global events).
    subscribe() {
      const eth = provider();
      if (!eth || subscribed || typeof eth.on !== "function") return subscribed;
      eth.on("accountsChanged", (accounts) => emitEvent("fedchain_wallet", { kind: "accounts", accounts }));
      eth.on("chainChanged", (chainId) => emitEvent("fedchain_wallet", { kind: "chain", chainId }));
      subscribed = true;
      return subscribed;
    },
  };
})();
