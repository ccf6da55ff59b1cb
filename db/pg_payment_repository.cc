#include "db/pg_payment_repository.h"

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "db/row_time.h"
#include "db/transaction.h"
#include "services/common/errors.h"

namespace order_platform::db {
namespace {

using payments::OperationKind;
using payments::Payment;
using payments::PaymentOperation;
using payments::PaymentStatus;

// One column list for every read of a payment; PaymentFromRow maps it. `t` qualifies the
// columns ("p." in a join, "" otherwise).
#define OP_PAYMENT_COLUMNS_OF(t)                                                                 \
  t "id::text, " t "order_id, " t "request_id, " t "request_fingerprint, " t "payment_token, " t \
    "currency, " t "amount_minor, " t "captured_minor, " t "refunded_minor, " t "status, " t     \
    "decline_reason, " t "gateway_reference, " t                                                 \
    "version, " OP_EPOCH_US(t "created_at") ", " OP_EPOCH_US(t "updated_at")
#define OP_PAYMENT_COLUMNS OP_PAYMENT_COLUMNS_OF("")
constexpr int kPaymentColumnCount = 15;

// One column list for every read of an operation record; OperationFromRow maps it.
#define OP_OPERATION_COLUMNS_OF(t)                                        \
  t "request_id, " t "payment_id::text, " t "kind, " t "amount_minor, " t \
    "request_fingerprint, " t "reason, " OP_EPOCH_US(t "created_at")
#define OP_OPERATION_COLUMNS OP_OPERATION_COLUMNS_OF("")
constexpr int kOperationColumnCount = 7;

// The kind of the operations row that records an authorization's request_id.
constexpr char kAuthorizeKind[] = "authorize";

// For several payments in one statement: claims each one's request_id in payments.operations
// (kind 'authorize') and inserts the payment only if its claim succeeded. Per payment (ordinal n,
// from 1): $1 id, $2 order id, $3 request id, $4 fingerprint, $5 payment token, $6 currency, $7
// amount, $8 captured, $9 refunded, $10 status, $11 decline reason, $12 gateway reference. A
// request_id already used by any payment request (an authorization, or a capture / void /
// refund) inserts nothing for that payment; a concurrent claim of it makes ON CONFLICT wait for
// that one's commit or rollback. Claims are inserted in request id order, so two statements
// claiming the same request ids never wait on each other both ways. The claims reference the
// payments inserted by the same statement; foreign keys are checked at its end. Returns the
// ordinals inserted, with the payment's times. Request ids and ids are distinct in a statement.
constexpr Statement kInsertPayments{
    "payments.insert",
    "WITH req AS MATERIALIZED ("
    "  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[],"
    "    $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[],"
    "    $12::text[]) WITH ORDINALITY AS r(id, order_id, request_id, request_fingerprint,"
    "    payment_token, currency, amount_minor, captured_minor, refunded_minor, status,"
    "    decline_reason, gateway_reference, n)"
    "), claim AS ("
    "  INSERT INTO payments.operations (request_id, payment_id, kind, amount_minor,"
    "    request_fingerprint)"
    "  SELECT r.request_id, r.id, 'authorize', r.amount_minor, r.request_fingerprint FROM req r"
    "  ORDER BY r.request_id"
    "  ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
    "), payment AS ("
    "  INSERT INTO payments.payments (id, order_id, request_id, request_fingerprint,"
    "    payment_token, currency, amount_minor, captured_minor, refunded_minor, status,"
    "    decline_reason, gateway_reference)"
    "  SELECT r.id, r.order_id, r.request_id, r.request_fingerprint, r.payment_token, r.currency,"
    "    r.amount_minor, r.captured_minor, r.refunded_minor, r.status, r.decline_reason,"
    "    r.gateway_reference FROM req r JOIN claim c ON c.request_id = r.request_id"
    "  RETURNING id, created_at, updated_at"
    ") "
    "SELECT r.n, " OP_EPOCH_US("p.created_at") ", " OP_EPOCH_US(
        "p.updated_at") " FROM payment p JOIN req r ON r.id = p.id"};

constexpr Statement kSelectPaymentByRequestId{"payments.select_by_request_id",
                                              "SELECT " OP_PAYMENT_COLUMNS
                                              " FROM payments.payments WHERE request_id = $1"};

constexpr Statement kSelectPayment{
    "payments.select", "SELECT " OP_PAYMENT_COLUMNS " FROM payments.payments WHERE id = $1::uuid"};

constexpr Statement kSelectPaymentForUpdate{
    "payments.select_for_update",
    "SELECT " OP_PAYMENT_COLUMNS " FROM payments.payments WHERE id = $1::uuid FOR UPDATE"};

// Saves the mutable fields ($2..$6) of payment $1 when it is at version $7; returns the new
// version and update time, no row when the payment is absent or at another version.
#define OP_UPDATE_PAYMENT                                                                    \
  "UPDATE payments.payments SET captured_minor = $2, refunded_minor = $3, status = $4,"      \
  " decline_reason = $5, gateway_reference = $6, version = version + 1, updated_at = now()" \
  " WHERE id = $1::uuid AND version = $7"                                                    \
  " RETURNING version, " OP_EPOCH_US("updated_at") " AS updated_us"

constexpr Statement kUpdatePayment{"payments.update", OP_UPDATE_PAYMENT};

// kUpdatePayment for several payments, each recording an operation only when its save did, in
// one statement. Per payment (ordinal n, from 1): $1 id, $2 captured, $3 refunded, $4 status, $5
// decline reason, $6 gateway reference, $7 the version it was read at; its operation: $8 request
// id, $9 kind, $10 amount, $11 fingerprint, $12 reason. A payment whose operation's request id is
// recorded already is not saved; one recorded concurrently, between that check and the insert,
// fails the whole statement (unique violation) and nothing is written. Returns, for each payment
// saved, its ordinal, new version, update time and the operation's create time; a payment absent or
// at another version writes nothing. Ids and request ids are distinct in a statement; payments are
// taken in id order.
constexpr Statement kUpdatePaymentsAndRecord{
    "payments.update_and_record",
    "WITH req AS MATERIALIZED ("
    "  SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],"
    "    $6::text[], $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::bigint[],"
    "    $12::text[]) WITH ORDINALITY AS r(id, captured_minor, refunded_minor, status,"
    "    decline_reason, gateway_reference, version, op_request_id, op_kind, op_amount_minor,"
    "    op_fingerprint, op_reason, n)"
    "  ORDER BY id"
    "), saved AS ("
    "  UPDATE payments.payments p SET captured_minor = r.captured_minor,"
    "    refunded_minor = r.refunded_minor, status = r.status, decline_reason = r.decline_reason,"
    "    gateway_reference = r.gateway_reference, version = p.version + 1, updated_at = now()"
    "  FROM req r WHERE p.id = ANY($1::uuid[]) AND p.id = r.id AND p.version = r.version"
    "    AND NOT EXISTS (SELECT 1 FROM payments.operations o"
    "                    WHERE o.request_id = r.op_request_id)"
    "  RETURNING r.n, p.version, p.updated_at"
    "), recorded AS ("
    "  INSERT INTO payments.operations (request_id, payment_id, kind, amount_minor,"
    "    request_fingerprint, reason)"
    "  SELECT r.op_request_id, r.id, r.op_kind, r.op_amount_minor, r.op_fingerprint, r.op_reason"
    "  FROM saved s JOIN req r ON r.n = s.n ORDER BY r.op_request_id"
    "  RETURNING request_id, created_at"
    ") "
    "SELECT s.n, s.version, " OP_EPOCH_US("s.updated_at") ", " OP_EPOCH_US("o.created_at")
    " FROM saved s JOIN req r ON r.n = s.n JOIN recorded o ON o.request_id = r.op_request_id"};

constexpr Statement kSelectOperation{"payments.select_operation",
                                     "SELECT " OP_OPERATION_COLUMNS
                                     " FROM payments.operations WHERE request_id = $1"};

// One row, always: the operation recorded under $2 (NULLs if none) and the payment it applied to,
// or payment $1 when none is recorded (NULLs if that does not exist either).
constexpr Statement kSelectForOperation{
    "payments.select_for_operation",
    "SELECT " OP_PAYMENT_COLUMNS_OF("p.") ", " OP_OPERATION_COLUMNS_OF("o.")
    " FROM (SELECT $2::text AS request_id) r"
    " LEFT JOIN payments.operations o ON o.request_id = r.request_id"
    " LEFT JOIN payments.payments p ON p.id = COALESCE(o.payment_id, $1::uuid)"};

constexpr Statement kInsertOperation{
    "payments.insert_operation",
    "INSERT INTO payments.operations (request_id, payment_id, kind, amount_minor,"
    " request_fingerprint, reason)"
    " VALUES ($1, $2::uuid, $3, $4, $5, $6)"
    " ON CONFLICT (request_id) DO NOTHING"
    " RETURNING " OP_EPOCH_US("created_at")};

// Keyset pages, newest first; one statement per filter so each uses its own index. $1/$2 is the
// cursor (exclusive), $3 the limit, then the filters.
#define OP_LIST_PAYMENTS(where)                                                     \
  "SELECT " OP_PAYMENT_COLUMNS                                                      \
  " FROM payments.payments WHERE (created_at, id) < "                               \
  "('epoch'::timestamptz + $1::bigint * interval '1 microsecond', $2::uuid) " where \
  " ORDER BY created_at DESC, id DESC LIMIT $3"

constexpr Statement kListPayments{"payments.list", OP_LIST_PAYMENTS("")};
constexpr Statement kListPaymentsByOrder{"payments.list_by_order",
                                         OP_LIST_PAYMENTS("AND order_id = $4")};

// A cursor above every real row (9999-12-31), for the first page.
constexpr int64_t kEndOfTimeMicros = 253402300799000000;

// Maps one row of OP_PAYMENT_COLUMNS.
Payment PaymentFromRow(const pqxx::row& row) {
  Payment p;
  p.id = row[0].as<std::string>();
  p.order_id = row[1].as<std::string>();
  p.request_id = row[2].as<std::string>();
  p.request_fingerprint = static_cast<uint64_t>(row[3].as<int64_t>());
  p.payment_token = row[4].as<std::string>();
  p.amount = Money{row[5].as<std::string>(), row[6].as<int64_t>()};
  p.captured_minor = row[7].as<int64_t>();
  p.refunded_minor = row[8].as<int64_t>();
  p.status =
      payments::ParsePaymentStatus(row[9].as<std::string>()).value_or(PaymentStatus::kPending);
  p.decline_reason = row[10].as<std::string>();
  p.gateway_reference = row[11].as<std::string>();
  p.version = row[12].as<int64_t>();
  p.create_time = TimeFromField(row[13]);
  p.update_time = TimeFromField(row[14]);
  return p;
}

// Maps one row of OP_OPERATION_COLUMNS. ALREADY_EXISTS for the row of an authorization: its
// request_id is taken, but not by a capture / void / refund.
absl::StatusOr<PaymentOperation> OperationFromRow(const pqxx::row& row) {
  if (row[2].as<std::string>() == kAuthorizeKind) return RequestIdReused(row[0].as<std::string>());
  PaymentOperation op;
  op.request_id = row[0].as<std::string>();
  op.payment_id = row[1].as<std::string>();
  op.kind =
      payments::ParseOperationKind(row[2].as<std::string>()).value_or(OperationKind::kCapture);
  op.amount_minor = row[3].as<int64_t>();
  op.request_fingerprint = static_cast<uint64_t>(row[4].as<int64_t>());
  op.reason = row[5].as<std::string>();
  op.create_time = TimeFromField(row[6]);
  return op;
}

absl::StatusOr<Payment> SinglePayment(const pqxx::result& rows, absl::string_view key) {
  if (rows.empty()) return NotFound("payment", key);
  return PaymentFromRow(rows[0]);
}

absl::StatusOr<Payment> LockPayment(pqxx::transaction_base& tx, const std::string& id) {
  return SinglePayment(Exec(tx, kSelectPaymentForUpdate, id), id);
}

// `before` with `mutate` applied to its mutable fields; the immutable ones come from `before`,
// whatever `mutate` did to them.
absl::StatusOr<Payment> Mutated(const Payment& before,
                                absl::FunctionRef<absl::Status(Payment&)> mutate) {
  Payment payment = before;
  OP_RETURN_IF_ERROR(mutate(payment));
  Payment after = before;
  after.captured_minor = payment.captured_minor;
  after.refunded_minor = payment.refunded_minor;
  after.status = payment.status;
  after.decline_reason = std::move(payment.decline_reason);
  after.gateway_reference = std::move(payment.gateway_reference);
  return after;
}

// Runs kUpdatePayment to save `after`, read at version `after.version`; `*after` gets the new
// version and update time. False when the payment is no longer at that version (nothing written).
bool SaveIfUnchanged(pqxx::transaction_base& tx, Payment* after) {
  const pqxx::result rows = Exec(tx, kUpdatePayment, after->id, after->captured_minor,
                                 after->refunded_minor, PaymentStatusName(after->status),
                                 after->decline_reason, after->gateway_reference, after->version);
  if (rows.empty()) return false;
  after->version = rows[0][0].as<int64_t>();
  after->update_time = TimeFromField(rows[0][1]);
  return true;
}

// Applies `mutate` to `before` (locked by this transaction) and saves the result in `tx`.
absl::StatusOr<Payment> MutateAndSave(pqxx::transaction_base& tx, const Payment& before,
                                      absl::FunctionRef<absl::Status(Payment&)> mutate) {
  OP_ASSIGN_OR_RETURN(Payment saved, Mutated(before, mutate));
  if (!SaveIfUnchanged(tx, &saved)) {
    return absl::InternalError(absl::StrCat("payment ", before.id, " changed while locked"));
  }
  return saved;
}

// The recorded operation `request_id` with its payment as it is now, or nullopt. ALREADY_EXISTS
// when `request_id` is an authorization's.
absl::StatusOr<std::optional<payments::ApplyOperationResult>> RecordedOperation(
    pqxx::transaction_base& tx, const std::string& request_id) {
  pqxx::result rows = Exec(tx, kSelectOperation, request_id);
  if (rows.empty()) return std::optional<payments::ApplyOperationResult>();
  payments::ApplyOperationResult replay;
  OP_ASSIGN_OR_RETURN(replay.operation, OperationFromRow(rows[0]));
  OP_ASSIGN_OR_RETURN(replay.payment,
                      SinglePayment(Exec(tx, kSelectPayment, replay.operation.payment_id),
                                    replay.operation.payment_id));
  replay.applied = false;
  return std::optional<payments::ApplyOperationResult>(std::move(replay));
}

}  // namespace

// One payment's CreatePending inside a kInsertPayments statement.
struct CreatePaymentWrite {
  const Payment* payment = nullptr;
  absl::Status status;    // The statement's.
  bool inserted = false;  // By the statement: the payment's times follow.
  absl::Time create_time;
  absl::Time update_time;
};

// One payment's ApplyOperation fast path inside a kUpdatePaymentsAndRecord statement.
struct ApplyOperationWrite {
  const Payment* after = nullptr;  // The payment to save, at the version it was read at.
  const PaymentOperation* operation = nullptr;
  absl::Status status;  // The statement's.
  bool saved = false;   // By the statement: the new version and times follow.
  int64_t version = 0;
  absl::Time update_time;
  absl::Time operation_time;
};

namespace {

// kInsertPayments for `writes` (distinct ids and request ids).
void ExecInsertPayments(pqxx::transaction_base& tx,
                        const std::vector<CreatePaymentWrite*>& writes) {
  std::vector<std::string> ids, order_ids, request_ids, tokens, currencies, statuses, reasons,
      references;
  std::vector<int64_t> fingerprints, amounts, captured, refunded;
  for (const CreatePaymentWrite* write : writes) {
    const Payment& p = *write->payment;
    ids.push_back(p.id);
    order_ids.push_back(p.order_id);
    request_ids.push_back(p.request_id);
    fingerprints.push_back(static_cast<int64_t>(p.request_fingerprint));
    tokens.push_back(p.payment_token);
    currencies.push_back(p.amount.currency);
    amounts.push_back(p.amount.minor);
    captured.push_back(p.captured_minor);
    refunded.push_back(p.refunded_minor);
    statuses.push_back(PaymentStatusName(p.status));
    reasons.push_back(p.decline_reason);
    references.push_back(p.gateway_reference);
  }
  for (CreatePaymentWrite* write : writes) write->inserted = false;
  const pqxx::result rows =
      Exec(tx, kInsertPayments, TextArray(ids), TextArray(order_ids), TextArray(request_ids),
           IntArray(fingerprints), TextArray(tokens), TextArray(currencies), IntArray(amounts),
           IntArray(captured), IntArray(refunded), TextArray(statuses), TextArray(reasons),
           TextArray(references));
  for (const pqxx::row& row : rows) {
    CreatePaymentWrite& write = *writes.at(row[0].as<int64_t>() - 1);
    write.inserted = true;
    write.create_time = TimeFromField(row[1]);
    write.update_time = TimeFromField(row[2]);
  }
}

bool SamePaymentOrRequest(const CreatePaymentWrite& a, const CreatePaymentWrite& b) {
  return a.payment->id == b.payment->id || a.payment->request_id == b.payment->request_id;
}

bool SamePaymentOrOperation(const ApplyOperationWrite& a, const ApplyOperationWrite& b) {
  return a.after->id == b.after->id || a.operation->request_id == b.operation->request_id;
}

}  // namespace

PgPaymentRepository::PgPaymentRepository(ConnectionPool* pool, WriteBatchOptions options)
    : pool_(*pool),
      // Create, apply.
      batch_pool_(BatchPoolOptions(pool->options(), options, 2, "_payment_batches")),
      creates_(
          options.max_batch,
          [this](const std::vector<CreatePaymentWrite*>& batch) { SendCreates(batch); },
          SamePaymentOrRequest),
      applies_(
          options.max_batch,
          [this](const std::vector<ApplyOperationWrite*>& batch) { SendApplies(batch); },
          SamePaymentOrOperation) {}

PgPaymentRepository::~PgPaymentRepository() = default;

GroupCommitStats PgPaymentRepository::WriteStats() const {
  GroupCommitStats total = creates_.Stats();
  total += applies_.Stats();
  return total;
}

void PgPaymentRepository::SendCreates(const std::vector<CreatePaymentWrite*>& batch) {
  // Keyed by request id: re-running it after a lost connection inserts nothing for the payments
  // it inserted, and they are then answered alone (finding their payment).
  const absl::Status status = RunSharedStatement(
      batch_pool_, batch, [&](pqxx::transaction_base& tx) { ExecInsertPayments(tx, batch); });
  if (!status.ok()) {
    for (CreatePaymentWrite* write : batch) write->inserted = false;
  }
}

void PgPaymentRepository::SendApplies(const std::vector<ApplyOperationWrite*>& batch) {
  std::vector<std::string> ids, statuses, reasons, references, op_ids, op_kinds, op_reasons;
  std::vector<int64_t> captured, refunded, versions, op_amounts, op_fingerprints;
  for (const ApplyOperationWrite* write : batch) {
    const Payment& p = *write->after;
    const PaymentOperation& op = *write->operation;
    ids.push_back(p.id);
    captured.push_back(p.captured_minor);
    refunded.push_back(p.refunded_minor);
    statuses.push_back(PaymentStatusName(p.status));
    reasons.push_back(p.decline_reason);
    references.push_back(p.gateway_reference);
    versions.push_back(p.version);
    op_ids.push_back(op.request_id);
    op_kinds.push_back(OperationKindName(op.kind));
    op_amounts.push_back(op.amount_minor);
    op_fingerprints.push_back(static_cast<int64_t>(op.request_fingerprint));
    op_reasons.push_back(op.reason);
  }
  pqxx::result rows;
  // Keyed by the operations' request ids: re-running it after a lost connection finds the
  // payments it saved changed, and they are then answered alone (finding their records). A
  // request id recorded already fails the statement: each is then answered alone.
  const absl::Status status =
      RunSharedStatement(batch_pool_, batch, [&](pqxx::transaction_base& tx) {
        rows =
            Exec(tx, kUpdatePaymentsAndRecord, TextArray(ids), IntArray(captured),
                 IntArray(refunded), TextArray(statuses), TextArray(reasons), TextArray(references),
                 IntArray(versions), TextArray(op_ids), TextArray(op_kinds), IntArray(op_amounts),
                 IntArray(op_fingerprints), TextArray(op_reasons));
      });
  if (!status.ok()) return;
  for (const pqxx::row& row : rows) {
    ApplyOperationWrite& write = *batch.at(row[0].as<int64_t>() - 1);
    write.saved = true;
    write.version = row[1].as<int64_t>();
    write.update_time = TimeFromField(row[2]);
    write.operation_time = TimeFromField(row[3]);
  }
}

absl::StatusOr<payments::CreatePaymentResult> PgPaymentRepository::CreatePending(
    const Payment& payment) {
  payments::CreatePaymentResult result;
  auto created = [&](absl::Time create_time, absl::Time update_time) {
    result.payment = payment;
    result.payment.version = 1;
    result.payment.create_time = create_time;
    result.payment.update_time = update_time;
    result.created = true;
  };
  // The common case: one statement, shared with the other payments created at the same time.
  CreatePaymentWrite write{.payment = &payment};
  creates_.Submit(write);
  if (write.inserted) {
    created(write.create_time, write.update_time);
    return result;
  }
  // Not inserted by that statement: its request id is taken, or the statement failed. Answered
  // alone, in one autocommit transaction. Keyed by request_id, so re-running it after a lost
  // connection is harmless: the replay finds the first payment. A concurrent claim of the same
  // request_id (by an authorization or an operation) makes ON CONFLICT wait for it, and the
  // follow-up SELECT (a new snapshot) then sees its payment, or none when an operation took the
  // request_id.
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                                    [&](pqxx::transaction_base& tx) -> absl::Status {
                                      ExecInsertPayments(tx, {&write});
                                      if (write.inserted) {
                                        created(write.create_time, write.update_time);
                                        return absl::OkStatus();
                                      }
                                      pqxx::result existing =
                                          Exec(tx, kSelectPaymentByRequestId, payment.request_id);
                                      // No payment: a capture / void / refund took the request_id.
                                      if (existing.empty())
                                        return RequestIdReused(payment.request_id);
                                      result.payment = PaymentFromRow(existing[0]);
                                      // Its own id: this call inserted it, in a shared statement
                                      // whose answer was lost with its connection.
                                      result.created = result.payment.id == payment.id;
                                      return absl::OkStatus();
                                    }));
  return result;
}

absl::StatusOr<Payment> PgPaymentRepository::Get(absl::string_view payment_id) {
  absl::StatusOr<Payment> result;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        result = SinglePayment(Exec(tx, kSelectPayment, std::string(payment_id)), payment_id);
        return absl::OkStatus();
      }));
  return result;
}

absl::StatusOr<PaymentOperation> PgPaymentRepository::GetOperation(absl::string_view request_id) {
  absl::StatusOr<PaymentOperation> result;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result rows = Exec(tx, kSelectOperation, std::string(request_id));
        result = rows.empty()
                     ? absl::StatusOr<PaymentOperation>(NotFound("payment operation", request_id))
                     : OperationFromRow(rows[0]);  // ALREADY_EXISTS for an authorization's.
        return absl::OkStatus();
      }));
  return result;
}

absl::StatusOr<payments::PaymentForOperation> PgPaymentRepository::GetForOperation(
    absl::string_view payment_id, absl::string_view request_id) {
  absl::StatusOr<payments::PaymentForOperation> result;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        const pqxx::row row =
            Exec(tx, kSelectForOperation, std::string(payment_id), std::string(request_id))[0];
        const pqxx::row payment = row.slice(0, kPaymentColumnCount);
        const pqxx::row operation =
            row.slice(kPaymentColumnCount, kPaymentColumnCount + kOperationColumnCount);
        payments::PaymentForOperation found;
        if (!operation[0].is_null()) {
          absl::StatusOr<PaymentOperation> recorded = OperationFromRow(operation);
          if (!recorded.ok()) {  // ALREADY_EXISTS: an authorization's request_id.
            result = recorded.status();
            return absl::OkStatus();
          }
          found.recorded = *std::move(recorded);
        }
        if (payment[0].is_null()) {
          result = NotFound("payment", payment_id);
          return absl::OkStatus();
        }
        found.payment = PaymentFromRow(payment);
        result = std::move(found);
        return absl::OkStatus();
      }));
  return result;
}

absl::StatusOr<payments::PaymentPage> PgPaymentRepository::List(
    const payments::PaymentListQuery& query) {
  // No cursor: start above every real row.
  const int64_t cursor_us = query.after ? absl::ToUnixMicros(query.after->time) : kEndOfTimeMicros;
  const std::string cursor_id =
      query.after ? query.after->id : "ffffffff-ffff-ffff-ffff-ffffffffffff";
  // Fetch one extra row to learn whether another page follows.
  const int64_t limit = int64_t{query.page_size} + 1;
  std::vector<Payment> rows;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result r = query.order_id ? Exec(tx, kListPaymentsByOrder, cursor_us, cursor_id,
                                               limit, *query.order_id)
                                        : Exec(tx, kListPayments, cursor_us, cursor_id, limit);
        rows.clear();
        for (const pqxx::row& row : r) rows.push_back(PaymentFromRow(row));
        return absl::OkStatus();
      }));
  payments::PaymentPage page;
  if (rows.size() > static_cast<size_t>(query.page_size)) {
    rows.resize(query.page_size);
    page.next = PageCursor{rows.back().create_time, rows.back().id};
  }
  page.payments = std::move(rows);
  return page;
}

absl::StatusOr<Payment> PgPaymentRepository::Update(
    const Payment& as_read, absl::FunctionRef<absl::Status(Payment&)> mutate) {
  // Unchanged since the caller read it: one conditional statement. Not idempotent (`mutate` is
  // arbitrary), so a lost connection is reported as an unknown outcome, as below.
  if (absl::StatusOr<Payment> after = Mutated(as_read, mutate); after.ok()) {
    bool saved = false;
    OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit},
                                      [&](pqxx::transaction_base& tx) -> absl::Status {
                                        saved = SaveIfUnchanged(tx, &*after);
                                        return absl::OkStatus();
                                      }));
    if (saved) return *std::move(after);
  }
  Payment saved;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    OP_ASSIGN_OR_RETURN(const Payment locked, LockPayment(tx, as_read.id));
    OP_ASSIGN_OR_RETURN(saved, MutateAndSave(tx, locked, mutate));
    return absl::OkStatus();
  }));
  return saved;
}

absl::StatusOr<payments::ApplyOperationResult> PgPaymentRepository::ApplyOperation(
    const PaymentOperation& operation, const Payment& as_read,
    absl::FunctionRef<absl::Status(Payment&)> mutate) {
  payments::ApplyOperationResult result;
  // Unchanged since the caller read it (so no operation was recorded for it since): the save and
  // the record in one statement. A request id recorded already (before the read, or concurrently
  // for another payment) fails it and writes nothing; the transaction below then answers.
  if (as_read.id == operation.payment_id) {
    if (absl::StatusOr<Payment> after = Mutated(as_read, mutate); after.ok()) {
      // Shared with the other operations applied at the same time.
      ApplyOperationWrite write{.after = &*after, .operation = &operation};
      applies_.Submit(write);
      if (write.saved) {
        after->version = write.version;
        after->update_time = write.update_time;
        result.payment = *std::move(after);
        result.operation = operation;
        result.operation.create_time = write.operation_time;
        result.applied = true;
        return result;
      }
    }
  }
  // Keyed by request_id: re-running after a connection lost during COMMIT finds the record.
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kReadCommitted, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        OP_ASSIGN_OR_RETURN(auto recorded, RecordedOperation(tx, operation.request_id));
        if (recorded) {
          result = std::move(*recorded);
          return absl::OkStatus();
        }
        // Lock first, then look again: a concurrent duplicate for this payment held the lock
        // and may have committed its record meanwhile (READ COMMITTED: a fresh snapshot per
        // statement).
        OP_ASSIGN_OR_RETURN(const Payment locked, LockPayment(tx, operation.payment_id));
        OP_ASSIGN_OR_RETURN(recorded, RecordedOperation(tx, operation.request_id));
        if (recorded) {
          result = std::move(*recorded);
          return absl::OkStatus();
        }
        OP_ASSIGN_OR_RETURN(result.payment, MutateAndSave(tx, locked, mutate));
        pqxx::result inserted =
            Exec(tx, kInsertOperation, operation.request_id, operation.payment_id,
                 OperationKindName(operation.kind), operation.amount_minor,
                 static_cast<int64_t>(operation.request_fingerprint), operation.reason);
        // Taken meanwhile by a request for another payment (or by an authorization): this one
        // must not apply.
        if (inserted.empty()) return RequestIdReused(operation.request_id);
        result.operation = operation;
        result.operation.create_time = TimeFromField(inserted[0][0]);
        result.applied = true;
        return absl::OkStatus();
      }));
  return result;
}

}  // namespace order_platform::db
