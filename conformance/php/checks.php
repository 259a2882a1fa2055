<?php
// WrenMQ conformance checks with PHP's PECL stomp extension (Debian's php-stomp), the client
// that reads one byte past each frame's NUL (see README.md, part "php/").
//
//   php checks.php --list                     the check names, one a line
//   php checks.php --port PORT --check NAME   runs one check against 127.0.0.1:PORT and prints
//                                             one line: "NAME PASS" or "NAME FAIL reason"
//
// part.sh runs every check in its own php process under `timeout`, so a check that hangs in
// the extension (its recv() after a poll timeout can block) is killed without taking the
// others with it. Inside a check every read has a timeout (Stomp::setReadTimeout) and every
// loop is bounded by a deadline. Exit status: 0 PASS, 1 FAIL, 2 bad usage.
//
// Connections use STOMP 1.0 (the extension sends no accept-version unless told, so that is
// what PHP code out there speaks), except redelivery-nack, which needs 1.2's NACK. The
// extension subscribes with ack:client unless the SUBSCRIBE says otherwise.

declare(strict_types=1);

const READ_TIMEOUT_US = 200000; // one readFrame() waits at most 0.2 s
const EXPECT_SECS = 10.0;       // anything expected arrives within 10 s
const QUIET_SECS = 0.5;         // watch 0.5 s for anything that must not arrive

final class CheckFailed extends Exception
{
}

function fail(string $why): never
{
    throw new CheckFailed($why);
}

/** A destination no other check or run uses. */
function unique(string $kind, string $name): string
{
    return sprintf('/%s/php-%s-%d-%s', $kind, $name, getmypid(), bin2hex(random_bytes(4)));
}

function connect(int $port, array $headers = []): Stomp
{
    $s = new Stomp("tcp://127.0.0.1:$port", '', '', $headers);
    $s->setReadTimeout(0, READ_TIMEOUT_US);
    return $s;
}

function connect12(int $port): Stomp
{
    return connect($port, ['accept-version' => '1.2', 'host' => '/']);
}

/** Sends with a receipt; the extension returns true only after the matching RECEIPT. */
function send_confirmed(Stomp $s, string $dest, string $body, array $headers = []): void
{
    $receipt = 'r-' . bin2hex(random_bytes(6));
    if (!$s->send($dest, $body, $headers + ['receipt' => $receipt])) {
        fail("SEND to $dest with receipt $receipt not confirmed: " . var_export($s->error(), true));
    }
}

function subscribe_confirmed(Stomp $s, string $dest, array $headers = []): void
{
    $receipt = 's-' . bin2hex(random_bytes(6));
    if (!$s->subscribe($dest, $headers + ['receipt' => $receipt])) {
        fail("SUBSCRIBE to $dest not confirmed: " . var_export($s->error(), true));
    }
}

/** Next MESSAGE within $secs, or null; any other frame (e.g. a mangled "ESSAGE") fails. */
function next_message(Stomp $s, float $secs): ?StompFrame
{
    $deadline = microtime(true) + $secs;
    do {
        $f = $s->readFrame();
        if ($f !== false && $f !== null) {
            if ($f->command !== 'MESSAGE') {
                $hint = $f->command === 'ESSAGE'
                    ? ' (the extension took its "M" for the EOL after the previous frame\'s NUL,'
                      . ' dropped that frame and read this one from its second byte)'
                    : '';
                fail('unexpected frame ' . var_export($f->command, true) . ' ' . json_encode($f->headers) . $hint);
            }
            return $f;
        }
    } while (microtime(true) < $deadline);
    return null;
}

/** Exactly $n messages (within EXPECT_SECS overall), in arrival order. */
function take(Stomp $s, int $n, string $who): array
{
    $got = [];
    $deadline = microtime(true) + EXPECT_SECS;
    while (count($got) < $n && microtime(true) < $deadline) {
        $f = next_message($s, $deadline - microtime(true));
        if ($f !== null) {
            $got[] = $f;
        }
    }
    if (count($got) !== $n) {
        fail("$who got " . count($got) . " of $n messages (" . bodies($got) . ')');
    }
    return $got;
}

/** Nothing arrives for QUIET_SECS. */
function quiet(Stomp $s, string $who): void
{
    $f = next_message($s, QUIET_SECS);
    if ($f !== null) {
        fail("$who got an unexpected message " . var_export($f->body, true) . ' ' . json_encode($f->headers));
    }
}

function bodies(array $frames): string
{
    return implode(',', array_map(fn ($f) => (string) $f->body, $frames));
}

function ack_all(Stomp $s, array $frames): void
{
    foreach ($frames as $f) {
        if (!$s->ack($f)) {
            fail('ACK failed: ' . var_export($s->error(), true));
        }
    }
}

// ---- checks ------------------------------------------------------------------------------

/** Two consumers on one queue share 10 messages 5/5, each exactly once. */
function check_round_robin(int $port): void
{
    $q = unique('queue', 'rr');
    $a = connect($port);
    $b = connect($port);
    subscribe_confirmed($a, $q);
    subscribe_confirmed($b, $q);
    $p = connect($port);
    $sent = [];
    for ($i = 0; $i < 10; $i++) {
        $sent[] = "rr-$i";
        send_confirmed($p, $q, "rr-$i");
    }
    $got = ['a' => [], 'b' => []];
    $deadline = microtime(true) + EXPECT_SECS;
    while (count($got['a']) + count($got['b']) < 10 && microtime(true) < $deadline) {
        foreach (['a' => $a, 'b' => $b] as $who => $c) {
            $f = next_message($c, 0.05);
            if ($f !== null) {
                $got[$who][] = $f;
                ack_all($c, [$f]);
            }
        }
    }
    quiet($a, 'consumer a');
    quiet($b, 'consumer b');
    $all = array_merge(array_map(fn ($f) => $f->body, $got['a']), array_map(fn ($f) => $f->body, $got['b']));
    sort($all, SORT_NATURAL);
    if ($all !== $sent) {
        fail('not all 10 exactly once: a=' . bodies($got['a']) . ' b=' . bodies($got['b']));
    }
    if (count($got['a']) !== 5 || count($got['b']) !== 5) {
        fail('not 5/5: a=' . bodies($got['a']) . ' b=' . bodies($got['b']));
    }
}

/** Two subscribers on a topic each get every message, in order. */
function check_fan_out(int $port): void
{
    $t = unique('topic', 'fan');
    $a = connect($port);
    $b = connect($port);
    subscribe_confirmed($a, $t, ['ack' => 'auto']);
    subscribe_confirmed($b, $t, ['ack' => 'auto']);
    $p = connect($port);
    $sent = [];
    for ($i = 0; $i < 6; $i++) {
        $sent[] = "fan-$i";
        send_confirmed($p, $t, "fan-$i");
    }
    foreach (['a' => $a, 'b' => $b] as $who => $c) {
        $got = array_map(fn ($f) => $f->body, take($c, 6, "subscriber $who"));
        if ($got !== $sent) {
            fail("subscriber $who got " . implode(',', $got) . ' (want ' . implode(',', $sent) . ')');
        }
        quiet($c, "subscriber $who");
    }
}

/** STOMP 1.2, client-individual: a NACKed message comes back with redelivered:true. */
function check_redelivery_nack(int $port): void
{
    $q = unique('queue', 'nack');
    $c = connect12($port);
    subscribe_confirmed($c, $q, ['id' => 'sub-1', 'ack' => 'client-individual']);
    send_confirmed(connect12($port), $q, 'nack-me');
    [$first] = take($c, 1, 'consumer');
    if ($first->body !== 'nack-me' || ($first->headers['redelivered'] ?? '') !== 'false') {
        fail('first delivery: ' . var_export($first->body, true) . ' ' . json_encode($first->headers));
    }
    $id = $first->headers['ack'] ?? fail('MESSAGE has no ack header: ' . json_encode($first->headers));
    if (!$c->nack($id, ['id' => $id, 'receipt' => 'nack-1'])) {
        fail('NACK not confirmed (no matching RECEIPT read): ' . var_export($c->error(), true));
    }
    [$again] = take($c, 1, 'consumer after NACK');
    if ($again->body !== 'nack-me' || ($again->headers['redelivered'] ?? '') !== 'true'
        || ($again->headers['message-id'] ?? '') !== ($first->headers['message-id'] ?? '?')) {
        fail('redelivery: ' . var_export($again->body, true) . ' ' . json_encode($again->headers));
    }
    $id = $again->headers['ack'] ?? fail('redelivered MESSAGE has no ack header');
    if (!$c->ack($id, ['id' => $id, 'receipt' => 'ack-1'])) {
        fail('ACK not confirmed: ' . var_export($c->error(), true));
    }
    quiet($c, 'consumer after ACK');
}

/** STOMP 1.0, client-individual: after a disconnect only the unacked message comes back,
 * to a new connection, with redelivered:true. */
function check_redelivery_disconnect(int $port): void
{
    $q = unique('queue', 'redeliver');
    $c = connect($port);
    subscribe_confirmed($c, $q, ['ack' => 'client-individual']);
    $p = connect($port);
    send_confirmed($p, $q, 'keep-1');
    send_confirmed($p, $q, 'ack-2');
    $got = take($c, 2, 'first consumer');
    if (bodies($got) !== 'keep-1,ack-2') {
        fail('first consumer got ' . bodies($got));
    }
    if (!$c->ack($got[1], ['receipt' => 'ack-2'])) {
        fail('ACK not confirmed: ' . var_export($c->error(), true));
    }
    unset($c); // the destructor sends DISCONNECT and closes the socket
    $d = connect($port);
    subscribe_confirmed($d, $q, ['ack' => 'client-individual']);
    [$back] = take($d, 1, 'second consumer');
    if ($back->body !== 'keep-1' || ($back->headers['redelivered'] ?? '') !== 'true') {
        fail('redelivery: ' . var_export($back->body, true) . ' ' . json_encode($back->headers));
    }
    ack_all($d, [$back]);
    quiet($d, 'second consumer');
}

/** BEGIN, 3 SENDs, COMMIT delivers the 3 (none before COMMIT); BEGIN, SEND, ABORT nothing. */
function check_transactions(int $port): void
{
    $q = unique('queue', 'tx');
    $c = connect($port);
    subscribe_confirmed($c, $q, ['ack' => 'auto']);
    $p = connect($port);
    if (!$p->begin('tx-commit', ['receipt' => 'b1'])) {
        fail('BEGIN not confirmed: ' . var_export($p->error(), true));
    }
    for ($i = 1; $i <= 3; $i++) {
        send_confirmed($p, $q, "tx-$i", ['transaction' => 'tx-commit']);
    }
    quiet($c, 'consumer before COMMIT');
    if (!$p->commit('tx-commit', ['receipt' => 'c1'])) {
        fail('COMMIT not confirmed: ' . var_export($p->error(), true));
    }
    $got = take($c, 3, 'consumer after COMMIT');
    if (bodies($got) !== 'tx-1,tx-2,tx-3') {
        fail('after COMMIT got ' . bodies($got));
    }
    if (!$p->begin('tx-abort', ['receipt' => 'b2'])) {
        fail('second BEGIN not confirmed: ' . var_export($p->error(), true));
    }
    send_confirmed($p, $q, 'aborted', ['transaction' => 'tx-abort']);
    if (!$p->abort('tx-abort', ['receipt' => 'a2'])) {
        fail('ABORT not confirmed: ' . var_export($p->error(), true));
    }
    quiet($c, 'consumer after ABORT');
    // A plain SEND after the ABORT is the next and only message: the aborted one is gone.
    send_confirmed($p, $q, 'after-abort');
    $got = take($c, 1, 'consumer');
    if ($got[0]->body !== 'after-abort') {
        fail('after ABORT got ' . var_export($got[0]->body, true));
    }
    quiet($c, 'consumer');
}

/** RECEIPTs for SUBSCRIBE, SEND, BEGIN/COMMIT and UNSUBSCRIBE carry their ids; a RECEIPT and
 * a MESSAGE arriving together on one connection are both read. */
function check_receipts(int $port): void
{
    $q = unique('queue', 'receipt');
    $c = connect($port);
    if (!$c->subscribe($q, ['ack' => 'auto', 'receipt' => 'rcpt-sub'])) {
        fail('SUBSCRIBE receipt: ' . var_export($c->error(), true));
    }
    // The MESSAGE for this SEND may come before or after its RECEIPT; the extension keeps a
    // MESSAGE it reads while waiting for the RECEIPT and hands it out next.
    if (!$c->send($q, 'with-receipt', ['receipt' => 'rcpt-send'])) {
        fail('SEND receipt: ' . var_export($c->error(), true));
    }
    [$m] = take($c, 1, 'consumer');
    if ($m->body !== 'with-receipt') {
        fail('got ' . var_export($m->body, true));
    }
    if (!$c->begin('rtx', ['receipt' => 'rcpt-begin']) || !$c->commit('rtx', ['receipt' => 'rcpt-commit'])) {
        fail('BEGIN/COMMIT receipt: ' . var_export($c->error(), true));
    }
    if (!$c->unsubscribe($q, ['receipt' => 'rcpt-unsub'])) {
        fail('UNSUBSCRIBE receipt: ' . var_export($c->error(), true));
    }
    if ($c->error() !== false) {
        fail('error() after receipts: ' . var_export($c->error(), true));
    }
}

/** Messages queued before SUBSCRIBE are pushed in one burst: several MESSAGE frames land in
 * one TCP read of the client, and every one of them is read, in order. */
function check_back_to_back(int $port): void
{
    $q = unique('queue', 'burst');
    $p = connect($port);
    $sent = [];
    for ($i = 0; $i < 12; $i++) {
        $sent[] = "burst-$i";
        send_confirmed($p, $q, "burst-$i");
    }
    $c = connect($port);
    if (!$c->subscribe($q, ['ack' => 'auto'])) {
        fail('SUBSCRIBE failed: ' . var_export($c->error(), true));
    }
    usleep(300000); // let the whole burst sit in the socket buffer before the first read
    $got = array_map(fn ($f) => $f->body, take($c, 12, 'consumer'));
    if ($got !== $sent) {
        fail('got ' . implode(',', $got));
    }
    quiet($c, 'consumer');
}

const CHECKS = [
    'round-robin' => 'check_round_robin',
    'fan-out' => 'check_fan_out',
    'redelivery-nack' => 'check_redelivery_nack',
    'redelivery-disconnect' => 'check_redelivery_disconnect',
    'transactions' => 'check_transactions',
    'receipts' => 'check_receipts',
    'back-to-back-frames' => 'check_back_to_back',
];

// ---- main --------------------------------------------------------------------------------

$opts = getopt('', ['list', 'port:', 'check:']);
if (isset($opts['list'])) {
    echo implode("\n", array_keys(CHECKS)), "\n";
    exit(0);
}
$port = (int) ($opts['port'] ?? 0);
$name = (string) ($opts['check'] ?? '');
if ($port <= 0 || !isset(CHECKS[$name])) {
    fwrite(STDERR, "usage: php checks.php --list | --port PORT --check NAME\n");
    exit(2);
}
if (!extension_loaded('stomp')) {
    echo "$name FAIL the stomp extension is not loaded\n";
    exit(1);
}
try {
    (CHECKS[$name])($port);
    echo "$name PASS\n";
    exit(0);
} catch (Throwable $e) {
    $why = $e instanceof CheckFailed ? $e->getMessage() : get_class($e) . ': ' . $e->getMessage();
    echo "$name FAIL ", str_replace("\n", ' ', $why), "\n";
    exit(1);
}
