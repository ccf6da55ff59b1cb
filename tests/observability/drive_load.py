#!/usr/bin/python3
"""Drives a small load through the real server that ends in every saga outcome.

Used by observability_test.sh so that every dashboard panel and alert expression has series to
evaluate. Needs stubs generated from proto/ by grpc_tools.protoc (their directory is argv[2]).

  drive_load.py <grpc target host:port> <stubs dir> <postgres dsn> <psql binary>

Scenarios (each order has its own token or SKU, so they do not interfere):
  completed        tok_approve orders                              PlaceOrder completed
  transient        tok_transient_2: authorize fails twice, then    step retries; completed
                   succeeds
  out of stock     more than on hand                               failed; out_of_stock
  unknown product  a SKU that does not exist                       failed; unknown_product
  declined         tok_decline                                     compensated (release_stock)
  payment failed   tok_transient_6: authorize gives up after 6     compensated; payment_failed;
                   attempts; its void fails 6 times, then works    void_payment failed and ok
  cancel           tok_transient_5; CancelOrder while authorize    cancelled
                   waits to retry
  refund           CancelOrder of a CONFIRMED order                RefundOrder completed
  refund failing   tok_refund_fails, cancelled once confirmed      RefundOrder retries forever
                                                                   (a `waiting` workflow)
  needs attention  tok_transient_20: authorize gives up and all 8  needs_attention (~30 s)
                   attempts of its void fail
  client errors    CreateOrder without items, GetOrder of a        INVALID_ARGUMENT, NOT_FOUND
                   malformed / unknown id
  database error   a statement waiting on a lock held by psql has  db errors, broken connections
                   its backend terminated
The script waits until every workflow has reached the state its scenario leads to (the failing
refund only until it has retried), prints one line per scenario and exits 0; on anything
unexpected it prints why and exits 1.
"""
import subprocess
import sys
import threading
import time
import uuid

target, stubs, dsn, psql = sys.argv[1:5]
sys.path.insert(0, stubs)

import grpc  # noqa: E402

from order_platform.common.v1 import money_pb2  # noqa: E402
from order_platform.inventory.v1 import inventory_pb2, inventory_pb2_grpc  # noqa: E402
from order_platform.orders.v1 import orders_pb2, orders_pb2_grpc  # noqa: E402
from order_platform.saga.v1 import workflow_pb2, workflow_pb2_grpc  # noqa: E402

RUN = uuid.uuid4().hex[:8]
channel = grpc.insecure_channel(target)
orders = orders_pb2_grpc.OrderServiceStub(channel)
inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
workflows = workflow_pb2_grpc.WorkflowServiceStub(channel)
W = workflow_pb2


def log(msg):
    print(f"drive_load: {msg}", flush=True)


def fail(msg):
    log(f"FAILED: {msg}")
    sys.exit(1)


def usd(minor):
    return money_pb2.Money(currency_code="USD", amount_minor=minor)


def product(sku, on_hand):
    inventory.UpsertProduct(inventory_pb2.UpsertProductRequest(
        request_id=f"obs-{RUN}-{sku}", sku=sku, name=f"Observability {sku}", unit_price=usd(500),
        on_hand=on_hand), timeout=10)


def create(token, sku, quantity=1):
    response = orders.CreateOrder(orders_pb2.CreateOrderRequest(
        request_id=f"obs-{RUN}-{uuid.uuid4().hex}", customer_id="observability",
        payment_token=token,
        items=[orders_pb2.OrderItem(sku=sku, quantity=quantity, unit_price=usd(500))]),
        timeout=10)
    return response.order


def cancel(order, reason="customer asked"):
    # CancelOrder waits up to --cancel_wait for the order to become CANCELLED, then returns it as
    # it is; either is fine here.
    return orders.CancelOrder(orders_pb2.CancelOrderRequest(
        request_id=f"obs-{RUN}-cancel-{order.order_id}", order_id=order.order_id,
        reason=reason), timeout=30)


def workflow(workflow_id):
    return workflows.GetWorkflow(W.GetWorkflowRequest(workflow_id=workflow_id), timeout=10)


def wait_workflow(order, statuses, timeout, what):
    deadline = time.time() + timeout
    while True:
        w = workflow(order.workflow_id)
        if w.status in statuses:
            log(f"{what}: workflow {W.WorkflowStatus.Name(w.status)} "
                f"({w.status_reason or 'no reason'})")
            return w
        if time.time() > deadline:
            fail(f"{what}: workflow still {W.WorkflowStatus.Name(w.status)} after {timeout}s: "
                 f"{w.status_reason}")
        time.sleep(0.2)


def wait_order(order, status, timeout, what):
    deadline = time.time() + timeout
    while True:
        o = orders.GetOrder(orders_pb2.GetOrderRequest(order_id=order.order_id), timeout=10)
        if o.status == status:
            return o
        if time.time() > deadline:
            fail(f"{what}: order still {orders_pb2.OrderStatus.Name(o.status)} after {timeout}s")
        time.sleep(0.1)


def sql(query):
    return subprocess.run([psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c",
                           query], check=True, capture_output=True, text=True).stdout.strip()


def expect_code(call, code, what):
    try:
        call()
    except grpc.RpcError as e:
        if e.code() != code:
            fail(f"{what}: expected {code}, got {e.code()} {e.details()}")
        return
    fail(f"{what}: expected {code}, got OK")


# ---- products -------------------------------------------------------------------------------
product(f"OBS-{RUN}-MANY", 100000)
product(f"OBS-{RUN}-ONE", 1)
MANY = f"OBS-{RUN}-MANY"

# ---- needs attention (first: it takes longest) ------------------------------------------------
# tok_transient_20 fails the first 20 gateway calls of each request: authorize_payment gives up
# after its 6 attempts (~3 s), the order is rejected, and void_payment (owed: an UNAVAILABLE
# authorization may have taken effect) fails all of its 8 attempts (~25 s of backoff).
stuck = create("tok_transient_20", MANY)

# ---- the quick outcomes ---------------------------------------------------------------------
completed = [create("tok_approve", MANY, quantity=i + 1) for i in range(5)]
transient = create("tok_transient_2", MANY)
out_of_stock = create("tok_approve", f"OBS-{RUN}-ONE", quantity=5)
unknown = create("tok_approve", f"OBS-{RUN}-NOSUCH")
declined = create("tok_decline", MANY)
payment_failed = create("tok_transient_6", MANY)
cancelled = create("tok_transient_5", MANY)
to_refund = create("tok_approve", MANY)
refund_fails = create("tok_refund_fails", MANY)

# Cancel while authorize_payment waits to retry (its first attempt failed).
deadline = time.time() + 10
while True:
    steps = {s.name: s for s in workflow(cancelled.workflow_id).steps}
    if "authorize_payment" in steps and steps["authorize_payment"].attempts >= 1:
        break
    if time.time() > deadline:
        fail("cancel: authorize_payment never attempted")
    time.sleep(0.05)
cancel_thread = threading.Thread(target=lambda: cancel(cancelled))
cancel_thread.start()

# Refunds: cancel once confirmed.
for order in (to_refund, refund_fails):
    wait_order(order, orders_pb2.ORDER_STATUS_CONFIRMED, 30, "refund")
    cancel(order, reason="changed my mind")

# Client mistakes.
expect_code(lambda: orders.CreateOrder(orders_pb2.CreateOrderRequest(
    request_id=f"obs-{RUN}-invalid", customer_id="observability", payment_token="tok_approve"),
    timeout=10), grpc.StatusCode.INVALID_ARGUMENT, "CreateOrder without items")
expect_code(lambda: orders.GetOrder(orders_pb2.GetOrderRequest(order_id="not-a-uuid"),
                                    timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT, "GetOrder of a malformed id")
expect_code(lambda: orders.GetOrder(orders_pb2.GetOrderRequest(
    order_id="01890000-0000-7000-8000-000000000000"), timeout=10),
    grpc.StatusCode.NOT_FOUND, "GetOrder of an unknown id")
orders.ListOrders(orders_pb2.ListOrdersRequest(customer_id="observability"), timeout=10)

# ---- wait for every outcome -------------------------------------------------------------------
for order in completed:
    wait_workflow(order, {W.WORKFLOW_STATUS_COMPLETED}, 30, "completed")
wait_workflow(transient, {W.WORKFLOW_STATUS_COMPLETED}, 30, "transient")
wait_workflow(out_of_stock, {W.WORKFLOW_STATUS_FAILED}, 30, "out of stock")
wait_workflow(unknown, {W.WORKFLOW_STATUS_FAILED}, 30, "unknown product")
wait_workflow(declined, {W.WORKFLOW_STATUS_COMPENSATED}, 30, "declined")
wait_workflow(payment_failed, {W.WORKFLOW_STATUS_COMPENSATED}, 60, "payment failed")
wait_workflow(cancelled, {W.WORKFLOW_STATUS_CANCELLED}, 60, "cancel")
cancel_thread.join()
refund = "refund-order-" + to_refund.order_id
refund_wf = workflow(refund)
deadline = time.time() + 30
while refund_wf.status != W.WORKFLOW_STATUS_COMPLETED:
    if time.time() > deadline:
        fail(f"refund: RefundOrder still {W.WorkflowStatus.Name(refund_wf.status)}")
    time.sleep(0.2)
    refund_wf = workflow(refund)
log("refund: RefundOrder COMPLETED")
deadline = time.time() + 30
while True:
    steps = {s.name: s for s in workflow("refund-order-" + refund_fails.order_id).steps}
    if "refund_payment" in steps and steps["refund_payment"].attempts >= 2:
        log("refund failing: refund_payment retrying")
        break
    if time.time() > deadline:
        fail("refund failing: refund_payment did not retry")
    time.sleep(0.2)
wait_workflow(stuck, {W.WORKFLOW_STATUS_NEEDS_ATTENTION}, 90, "needs attention")

# ---- database error ---------------------------------------------------------------------------
# A statement of the server's is made to wait on a lock, and its backend is terminated while it
# waits: the statement fails (counted in order_platform_db_errors_total, SQLSTATE class 57 or
# `connection`) and the pool replaces the connection (broken connections). The request is
# retried or fails with UNAVAILABLE; either is fine.
locker = subprocess.Popen([psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
locker.stdin.write("BEGIN;\nLOCK TABLE orders.orders IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n")
locker.stdin.flush()
if locker.stdout.readline().strip() != "locked":
    fail("database error: could not lock orders.orders")


def blocked_list():
    try:
        orders.ListOrders(orders_pb2.ListOrdersRequest(customer_id="observability"), timeout=20)
    except grpc.RpcError:
        pass


lister = threading.Thread(target=blocked_list)
lister.start()
deadline = time.time() + 10
terminated = "0"
while terminated == "0":
    if time.time() > deadline:
        fail("database error: ListOrders never waited on the lock")
    time.sleep(0.05)
    terminated = sql("SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l "
                     "JOIN pg_class c ON c.oid = l.relation "
                     "WHERE NOT l.granted AND c.relname = 'orders'")
locker.stdin.write("COMMIT;\n")
locker.stdin.close()
locker.wait(timeout=10)
lister.join()
log(f"database error: {terminated} waiting statement(s) terminated")
log("all scenarios done")
