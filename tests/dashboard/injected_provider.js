// A test "browser wallet": an EIP-1193 provider that forwards to anvil's JSON-RPC (whose dev accounts are
// unlocked, so eth_sendTransaction and personal_sign work), emits accountsChanged / chainChanged, and obeys the
// test through window.__wallet: reject the next request with 4001, report another chain id, switch accounts.
(() => {
  const config = __FEDCHAIN_WALLET_CONFIG__;
  const listeners = { accountsChanged: [], chainChanged: [], connect: [], disconnect: [] };
  const state = {
    accounts: config.accounts, authorized: config.authorized, reject: null, chain: null, unknownChain: false,
  };
  let nextId = 0;

  async function rpc(method, params) {
    const response = await fetch(config.rpc, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++nextId, method, params: params || [] }),
    });
    const body = await response.json();
    if (body.error) throw providerError(body.error.code, body.error.message, body.error.data);
    return body.result;
  }
  function providerError(code, message, data) {
    const error = new Error(message);
    error.code = code;
    if (data !== undefined) error.data = data;
    return error;
  }
  function emit(event, value) {
    for (const listener of listeners[event] || []) setTimeout(() => listener(value), 0);
  }

  window.__wallet = {
    log: [],
    rejectNext(method) { state.reject = method || "*"; },
    unknownChainOnce() { state.unknownChain = true; },
    setChain(chainIdHex, silent) { state.chain = chainIdHex; if (!silent) emit("chainChanged", chainIdHex); },
    setAccounts(accounts) { state.accounts = accounts; state.authorized = true; emit("accountsChanged", accounts); },
  };

  window.ethereum = {
    isFedchainTestWallet: true,
    async request({ method, params }) {
      window.__wallet.log.push(method);
      if (state.reject && (state.reject === "*" || state.reject === method)) {
        state.reject = null;
        throw providerError(4001, "User rejected the request.");
      }
      switch (method) {
        case "eth_requestAccounts":
          state.authorized = true;
          return state.accounts.slice();
        case "eth_accounts":
          return state.authorized ? state.accounts.slice() : [];
        case "eth_chainId":
          return state.chain || rpc("eth_chainId", []);
        case "wallet_switchEthereumChain": {
          if (state.unknownChain) {
            state.unknownChain = false;
            throw providerError(4902, "Unrecognized chain ID. Try adding the chain using wallet_addEthereumChain.");
          }
          state.chain = null;
          const chainId = await rpc("eth_chainId", []);
          if (chainId !== params[0].chainId) throw providerError(4902, "Unrecognized chain ID.");
          emit("chainChanged", chainId);
          return null;
        }
        case "eth_sendTransaction":
        case "personal_sign":
          if (!state.authorized) throw providerError(4100, "Unauthorized: connect first.");
          if (state.chain) throw providerError(-32000, "test wallet: refusing to send on a foreign chain");
          return rpc(method, params);
        default:
          return rpc(method, params);
      }
    },
    on(event, listener) { (listeners[event] = listeners[event] || []).push(listener); return this; },
    removeListener(event, listener) {
      listeners[event] = (listeners[event] || []).filter((l) => l !== listener);
      return this;
    },
  };
})();
