import time


def test_probe(accounts, project, chain):
    acc = accounts
    admin = acc[0]
    token = admin.deploy(project.FedToken, admin, admin)
    token.mint(acc[2], 10**24, sender=admin)
    w3 = chain.provider.web3
    print(type(w3.provider), w3.eth.accounts[:3], admin.address)
    c = w3.eth.contract(address=token.address, abi=[a.model_dump(by_alias=True, mode="json") for a in token.contract_type.abi])
    t0 = time.time()
    for _ in range(20):
        w3.eth.block_number
    print("rpc", (time.time() - t0) / 20)
    t0 = time.time()
    for _ in range(20):
        c.functions.balanceOf(acc[2].address).call()
    print("w3 call", (time.time() - t0) / 20)
    t0 = time.time()
    for _ in range(10):
        h = c.functions.mint(acc[2].address, 5).transact({"from": admin.address, "gas": 500000})
        w3.eth.get_transaction_receipt(h)
    print("w3 tx", (time.time() - t0) / 10)
    t0 = time.time()
    for _ in range(10):
        h = w3.provider.make_request("eth_sendTransaction", [{"from": admin.address, "to": token.address, "gas": hex(500000), "data": c.encode_abi("mint", [acc[2].address, 5])}])
        w3.provider.make_request("eth_getTransactionReceipt", [h["result"]])
    print("raw tx", (time.time() - t0) / 10)
    t0 = time.time()
    with w3.batch_requests() as b:
        for i in range(15):
            b.add(c.functions.balanceOf(acc[i].address))
        res = b.execute()
    print("batch15", time.time() - t0, res[:3])
