/*
 * Mosquitto plugin: a client id belongs to its username.
 *
 * Mosquitto lets any authenticated client connect with any client id, and a second connection
 * with an id takes the first one's session (MQTT's session takeover): with a device's password,
 * a client that names the ingester's id wipes the ingester's persistent session and its backlog.
 * Mosquitto's own remedy, use_username_as_clientid, makes the id *equal* the username, so two
 * processes of one principal (two ingesters, two gateways cloned from one image) would take
 * each other's session in a loop. This plugin binds the id to the username instead:
 *
 *     client id == username, or client id starts with username + "@"
 *
 * e.g. user "ingest" may be "ingest@server1.1"; user "gw-01" may be "gw-01@j9ve5.k3h2a".
 * A username containing "@" is refused (it could claim another's prefix). Anything else is
 * refused before the session is touched; a connection that passes goes on to the listener's
 * password_file and ACL (MOSQ_ERR_PLUGIN_DEFER), so this plugin never lets anyone in by itself.
 *
 * A refusal is logged, and said on EVENT_TOPIC as a small JSON event that only the ingester
 * may read (the ACL, wastebank/devices/ acl_text): it counts it and raises a
 * "session_takeover" alert. The check runs before the password is (it must: after a password
 * check that passes, Mosquitto takes the old session over at once), so the username in the
 * event is the one the client *gave*. Events are rate-limited so a loop of refused connects
 * cannot flood the ingester: see note_refusal.
 *
 * Built by `wastebank services up` (wastebank/services/) with the mosquitto-dev headers;
 * docs/operations.md, "Broker identities"; the event: docs/protocol.md.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

/* wastebank/broker_events.py REFUSED_TOPIC; the ACL grants it to the ingester alone. */
#define EVENT_TOPIC "wastebank/broker/refused"
/* At most one event per (username, client id) per this many seconds; the refusals between
 * are counted and said in that pair's next event. */
#define EVENT_EVERY_S 10
/* Pairs tracked at once. A refusal of a new pair while every slot holds a pair refused in the
 * last EVENT_EVERY_S seconds (a flood of made-up names) is only counted ("unreported" in the
 * next event): at most EVENT_SLOTS events per EVENT_EVERY_S seconds in all. */
#define EVENT_SLOTS 32
/* Bytes of a username or client id kept in an event and the log (cut at a UTF-8 boundary). */
#define FIELD_MAX 128
#define ESCAPED_MAX (FIELD_MAX * 6 + 1)

enum reason { FOREIGN_CLIENT_ID, USERNAME_WITH_AT };
static const char *const REASONS[] = { "foreign_client_id", "username_with_at" };

struct slot {
	bool used;
	uint64_t key;                /* FNV-1a of username, NUL, client id (whole, not cut) */
	enum reason reason;
	char username[FIELD_MAX + 1];
	char client_id[FIELD_MAX + 1];
	char address[64];
	bool truncated;
	time_t said_at;              /* monotonic: when this pair's last event was published */
	unsigned long pending;       /* refusals since then, not said yet */
	time_t pending_at;           /* wall clock of the latest of them */
};

/* Mosquitto runs plugins on its one thread; one table for every listener's load (dlopen
 * shares one copy of the library). */
static struct slot slots[EVENT_SLOTS];
static unsigned long unreported;

static time_t monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* At most FIELD_MAX bytes of src, never half a UTF-8 character (Mosquitto has checked that
 * usernames and client ids are valid UTF-8). */
static bool copy_field(char *dst, const char *src)
{
	size_t n = strlen(src);
	bool cut = n > FIELD_MAX;

	if (cut) {
		n = FIELD_MAX;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
			n--;
		}
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
	return cut;
}

/* src as the inside of a JSON string; also keeps control characters out of the log. */
static void json_escape(char *out, size_t cap, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 7 < cap; src++) {
		unsigned char c = (unsigned char)*src;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7F) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

static void publish_event(struct slot *s, unsigned long count, time_t at)
{
	char user[ESCAPED_MAX], id[ESCAPED_MAX], owner[ESCAPED_MAX], address[sizeof s->address * 6 + 3];
	char when[32], payload[4 * ESCAPED_MAX + 512];
	struct tm tm;
	int n, rc;

	json_escape(user, sizeof user, s->username);
	json_escape(id, sizeof id, s->client_id);
	/* Whose id it is: the id up to its first "@" (the rule above). */
	json_escape(owner, sizeof owner, s->client_id);
	owner[strcspn(owner, "@")] = '\0';
	if (s->address[0] == '\0') {
		strcpy(address, "null");
	} else {
		address[0] = '"';
		json_escape(address + 1, sizeof address - 2, s->address);
		strcat(address, "\"");
	}
	gmtime_r(&at, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(payload, sizeof payload,
		"{\"reason\":\"%s\",\"username\":\"%s\",\"client_id\":\"%s\",\"owner\":\"%s\","
		"\"address\":%s,\"at\":\"%s\",\"count\":%lu,\"unreported\":%lu,\"truncated\":%s}",
		REASONS[s->reason], user, id, owner, address, when, count, unreported,
		s->truncated ? "true" : "false");
	if (n < 0 || (size_t)n >= sizeof payload) {
		return; /* cannot happen: the buffer holds the longest fields */
	}
	/* QoS 1 as published; the ingester subscribes at QoS 0 (docs/protocol.md). */
	rc = mosquitto_broker_publish_copy(NULL, EVENT_TOPIC, n, payload, 1, false, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		mosquitto_log_printf(MOSQ_LOG_WARNING,
			"wastebank: peristiwa penolakan tidak terkirim / refusal event not published: %s",
			mosquitto_strerror(rc));
		return;
	}
	unreported = 0;
	s->said_at = monotonic_s();
}

/* Say what waited out its EVENT_EVERY_S seconds: run at every CONNECT, refused or not (2.0.11
 * calls no plugin's timer under per_listener_settings). Counts waiting when the broker stops
 * are lost (they are in its log); a reload (SIGHUP) keeps a version 5 plugin loaded. */
static void flush(time_t now)
{
	for (int i = 0; i < EVENT_SLOTS; i++) {
		struct slot *s = &slots[i];

		if (s->used && s->pending > 0 && now - s->said_at >= EVENT_EVERY_S) {
			unsigned long count = s->pending;

			s->pending = 0;
			publish_event(s, count, s->pending_at);
		}
	}
}

/* A refusal: published at once for a pair not said in the last EVENT_EVERY_S seconds, else
 * counted for that pair's next event. */
static void note_refusal(enum reason reason, const char *user, const char *id, const char *addr)
{
	time_t now = monotonic_s();
	uint64_t key = fnv1a(fnv1a(14695981039346656037ULL, user, strlen(user) + 1), id, strlen(id));
	struct slot *s = NULL, *free_slot = NULL;

	for (int i = 0; i < EVENT_SLOTS && s == NULL; i++) {
		if (slots[i].used && slots[i].key == key) {
			s = &slots[i];
		} else if (free_slot == NULL
		           && (!slots[i].used
		               || (slots[i].pending == 0 && now - slots[i].said_at >= EVENT_EVERY_S))) {
			free_slot = &slots[i];
		}
	}
	if (s == NULL && free_slot == NULL) {
		unreported++;
		return;
	}
	if (s == NULL) {
		s = free_slot;
		memset(s, 0, sizeof *s);
		s->used = true;
		s->key = key;
		s->truncated = copy_field(s->username, user) | copy_field(s->client_id, id);
		s->said_at = now - EVENT_EVERY_S;
	}
	s->reason = reason;
	snprintf(s->address, sizeof s->address, "%s", addr ? addr : "");
	s->pending++;
	s->pending_at = time(NULL);
	if (now - s->said_at >= EVENT_EVERY_S) {
		unsigned long count = s->pending;

		s->pending = 0;
		publish_event(s, count, s->pending_at);
	}
}

static int basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *id = mosquitto_client_id(ed->client);
	const char *user = ed->username;
	const char *addr;
	char cut_user[FIELD_MAX + 1], cut_id[FIELD_MAX + 1];
	char log_user[ESCAPED_MAX], log_id[ESCAPED_MAX], log_owner[ESCAPED_MAX];
	enum reason reason;
	size_t n;

	(void)event;
	(void)userdata;
	flush(monotonic_s());
	if (user == NULL || id == NULL) {
		/* Anonymous: the listener refuses it too (allow_anonymous false); say so once here. */
		return MOSQ_ERR_AUTH;
	}
	n = strlen(user);
	if (strchr(user, '@') != NULL) {
		reason = USERNAME_WITH_AT;
	} else if (n > 0 && strncmp(id, user, n) == 0 && (id[n] == '\0' || id[n] == '@')) {
		return MOSQ_ERR_PLUGIN_DEFER;
	} else {
		reason = FOREIGN_CLIENT_ID;
	}
	addr = mosquitto_client_address(ed->client);
	copy_field(cut_user, user);
	copy_field(cut_id, id);
	json_escape(log_user, sizeof log_user, cut_user);
	json_escape(log_id, sizeof log_id, cut_id);
	if (reason == USERNAME_WITH_AT) {
		mosquitto_log_printf(MOSQ_LOG_WARNING,
			"wastebank: ditolak / refused from %s: nama pengguna '%s' memuat '@' / username "
			"'%s' contains '@' (client id '%s'); '@' memisahkan nama pengguna dari nama proses / "
			"'@' separates a username from its process name (docs/operations.md, Broker "
			"identities)",
			addr ? addr : "?", log_user, log_user, log_id);
	} else {
		memcpy(log_owner, log_id, sizeof log_owner);
		log_owner[strcspn(log_owner, "@")] = '\0';
		mosquitto_log_printf(MOSQ_LOG_WARNING,
			"wastebank: ditolak / refused from %s: client id '%s' milik '%s', bukan pengguna "
			"'%s' / client id '%s' belongs to '%s', not to user '%s'; client id harus nama "
			"pengguna atau diawali nama-pengguna@ / a client id must be the username or start "
			"with username@ (docs/operations.md, Broker identities)",
			addr ? addr : "?", log_id, log_owner, log_user, log_id, log_owner, log_user);
	}
	note_refusal(reason, user, id, addr);
	return MOSQ_ERR_AUTH;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5) {
			return 5;
		}
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
	struct mosquitto_opt *opts, int opt_count)
{
	(void)opts;
	(void)opt_count;
	/* Loaded once per listener (per_listener_settings): each load keeps its own id. */
	*user_data = identifier;
	return mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, basic_auth, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)opts;
	(void)opt_count;
	return mosquitto_callback_unregister(user_data, MOSQ_EVT_BASIC_AUTH, basic_auth, NULL);
}
