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
 * Built by `wastebank services up` (wastebank/services.py) with the mosquitto-dev headers;
 * docs/operations.md, "Broker identities".
 */
#include <stddef.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static int basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *id = mosquitto_client_id(ed->client);
	const char *user = ed->username;
	size_t n;

	(void)event;
	(void)userdata;
	if (user == NULL || id == NULL) {
		/* Anonymous: the listener refuses it too (allow_anonymous false); say so once here. */
		return MOSQ_ERR_AUTH;
	}
	n = strlen(user);
	if (n > 0 && strchr(user, '@') == NULL && strncmp(id, user, n) == 0
	    && (id[n] == '\0' || id[n] == '@')) {
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	mosquitto_log_printf(MOSQ_LOG_WARNING,
		"wastebank: refused client id '%s' for user '%s' from %s: a client id must be the "
		"username or start with username@ (docs/operations.md, Broker identities)",
		id, user, mosquitto_client_address(ed->client));
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
