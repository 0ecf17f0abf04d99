"""Unit tests for the nginx_split include: input checks, rendering, the file companions and the nginx runner.

``nginx -t`` runs for real against a throwaway main configuration (no server is started).
"""
import decimal
import json
import os
import re
import shutil
import stat

import pytest

from ansible_collections.saferelease.core.plugins.module_utils import nginx_config as config
from ansible_collections.saferelease.core.plugins.module_utils import nginx_runner as runner_utils
from ansible_collections.saferelease.core.plugins.module_utils.nginx_config import SplitConfigError

POOLS = {"blue": ["127.0.0.1:3000"], "green": ["127.0.0.1:3001"]}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def routing(app="danci", pools=None, **kwargs):
    return config.build_routing(app, POOLS if pools is None else pools, **kwargs)


def split_lines(text):
    block = re.search(r"split_clients [^{]+\{\n(.*?)\n\}", text, re.S).group(1)
    return [line.split() for line in block.splitlines()]


# --- weights ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (10, "10"), ("10", "10"), ("12.5%", "12.5"), (33.33, "33.33"), (0, "0"), (100, "100"), (" 7.25 ", "7.25"),
])
def test_percentages_up_to_two_decimals_are_accepted(value, expected):
    assert config.format_share(config.parse_percentage(value, "green")) == expected


@pytest.mark.parametrize("value, fragment", [
    (10.005, "at most two decimals"), ("1.001", "at most two decimals"), (-1, "from 0 to 100"),
    (100.01, "from 0 to 100"), ("ten", "must be a number"), (True, "must be a number"), ("", "must be a number"),
    ("nan", "from 0 to 100"),
])
def test_bad_percentages_are_refused(value, fragment):
    with pytest.raises(SplitConfigError, match=re.escape(fragment)):
        config.parse_percentage(value, "green")


def test_weights_must_add_up_to_exactly_100_and_name_known_pools():
    pools = dict(POOLS, grey=["127.0.0.1:3002"])
    shares = config.normalise_weights({"blue": 33.33, "green": 33.33, "grey": 33.34}, pools)
    assert sum(shares.values()) == decimal.Decimal(100)
    assert config.normalise_weights({"green": 100}, pools)["blue"] == 0  # pools not named get 0 %
    with pytest.raises(SplitConfigError, match=r"add up to 99\.99%"):
        config.normalise_weights({"blue": 66.66, "green": 33.33}, pools)
    with pytest.raises(SplitConfigError, match=r"unknown pool\(s\) purple"):
        config.normalise_weights({"blue": 90, "purple": 10}, pools)


def test_canary_bucket_comes_first_and_zero_shares_are_left_out():
    shares = config.normalise_weights({"blue": 90, "green": 10, "grey": 0}, dict(POOLS, grey=["127.0.0.1:1"]))
    assert [pool for pool, _share in config.bucket_order(shares, canary="green")] == ["green", "blue"]
    assert [pool for pool, _share in config.bucket_order(shares)] == ["blue", "green"]
    with pytest.raises(SplitConfigError, match="canary pool 'purple'"):
        config.bucket_order(shares, canary="purple")


def canary_range(weights, canary=None):
    """The slice of the hash range (in percent) split_clients gives the pool green."""
    pools = dict(POOLS, grey=["127.0.0.1:3002"])
    start = decimal.Decimal(0)
    for pool, share in config.bucket_order(config.normalise_weights(weights, pools), canary):
        if pool == "green":
            return start, start + share
        start += share


def test_raising_the_canary_keeps_its_clients_only_when_it_comes_first():
    before = {"blue": 80, "green": 5, "grey": 15}
    after = {"blue": 82, "green": 10, "grey": 8}
    low, high = canary_range(before, canary="green")
    new_low, new_high = canary_range(after, canary="green")
    assert new_low <= low and high <= new_high  # every client green had is still green
    # Sorted by name, green sits after blue, and blue growing shifts green's slice away from its clients.
    low, high = canary_range(before)
    new_low, new_high = canary_range(after)
    assert low < new_low


# --- rendering -------------------------------------------------------------------------------------

def test_blue_green_renders_one_bucket_and_every_upstream():
    text = config.render(routing(active="green"))
    assert split_lines(text) == [["*", "danci_green;"]]
    assert "upstream danci_blue {\n    server 127.0.0.1:3000;\n}" in text  # the idle colour stays reachable
    assert "upstream danci_green {\n    server 127.0.0.1:3001;\n}" in text
    assert "map $danci_pool_by_weight $danci_pool {\n    default $danci_pool_by_weight;\n}" in text


def test_canary_split_renders_percentages_and_the_remainder_last():
    text = config.render(routing(weights={"blue": 87.5, "green": 12.5}, canary="green", split_key="$cookie_uid"))
    assert 'split_clients "$cookie_uid" $danci_pool_by_weight {' in text
    assert split_lines(text) == [["12.5%", "danci_green;"], ["*", "danci_blue;"]]


def test_rendering_is_deterministic_whatever_the_input_order():
    first = routing(pools={"green": ["127.0.0.1:3001"], "blue": ["127.0.0.1:3000"]}, weights={"green": 10, "blue": 90})
    second = routing(pools={"blue": ["127.0.0.1:3000"], "green": ["127.0.0.1:3001"]}, weights={"blue": 90, "green": 10})
    assert config.render(first) == config.render(second)


def test_server_settings_are_rendered():
    pools = {"blue": [{"address": "10.0.0.1:3000", "weight": 3, "max_fails": 2, "fail_timeout": "10s"},
                      {"address": "10.0.0.2:3000", "backup": True}, "unix:/run/blue.sock"],
             "green": "[::1]:3001"}
    text = config.render(routing(pools=pools, active="blue"))
    assert "    server 10.0.0.1:3000 weight=3 max_fails=2 fail_timeout=10s;\n    server 10.0.0.2:3000 backup;\n" \
           "    server unix:/run/blue.sock;\n" in text
    assert "    server [::1]:3001;\n" in text


def test_header_overrides_cookie_overrides_split():
    text = config.render(routing(active="blue", force_header="X-Release-Pool", force_cookie="release_pool"))
    assert "map $cookie_release_pool $danci_pool_by_cookie {\n    default $danci_pool_by_weight;" in text
    assert "map $http_x_release_pool $danci_pool {\n    default $danci_pool_by_cookie;" in text
    assert re.search(r"map \$http_x_release_pool \$danci_pool \{[^}]*green\s+danci_green;", text)
    only_cookie = config.render(routing(active="blue", force_cookie="canary"))
    assert "map $cookie_canary $danci_pool {\n    default $danci_pool_by_weight;" in only_cookie


def test_pool_name_variable_maps_upstreams_back_to_pool_names():
    text = config.render(routing(active="blue"))
    assert re.search(r"map \$danci_pool \$danci_pool_name \{\n    default \"\";\n\s+danci_blue\s+blue;\n\s+danci_green\s+green;",
                     text)


def test_log_format_is_the_shared_json_format():
    text = config.render(routing(weights={"blue": 90, "green": 10}, split_key="$arg_userId"))
    line = re.search(r"^log_format danci_split escape=json '(.*)';$", text, re.M).group(1)
    # What nginx writes for one request: substitute each variable by a value of its kind.
    values = {"$time_iso8601": "2025-01-01T00:00:00+00:00", "$msec": "1735689600.123", "$danci_pool_name": "green",
              "$upstream_addr": "127.0.0.1:3001", "$status": "502", "$upstream_status": "502",
              "$request_time": "0.004", "$upstream_response_time": "0.003, -", "$request_method": "GET",
              "$uri": "/api/x", "$arg_userId": "u42"}
    for variable in sorted(values, key=len, reverse=True):
        line = line.replace(variable, values[variable])
    entry = json.loads(line)
    assert list(entry) == ["time", "msec", "app", "pool", "upstream_addr", "status", "upstream_status", "request_time",
                           "upstream_response_time", "method", "uri", "split_key"]
    assert entry["app"] == "danci" and entry["pool"] == "green" and entry["split_key"] == "u42"
    assert entry["msec"] == 1735689600.123 and entry["status"] == 502 and entry["request_time"] == 0.004
    assert entry["upstream_response_time"] == "0.003, -"


def test_state_line_records_the_routing():
    text = config.render(routing(weights={"blue": 87.5, "green": 12.5}, canary="green"))
    state = config.read_state(text)
    assert state["weights"] == {"blue": 87.5, "green": 12.5} and state["active"] is None and state["canary"] == "green"
    assert config.read_state(config.render(routing(active="blue")))["active"] == "blue"
    assert config.read_state("upstream x { server a:1; }") is None


def test_routing_reads_back_the_servers_of_every_pool_as_they_were_given():
    pools = {"blue": [{"address": "10.0.0.11:3000", "weight": 2, "max_fails": 3, "fail_timeout": "10s"},
                      {"address": "10.0.0.12:3000", "down": True}],
             "green": ["10.0.0.13:3001", {"address": "unix:/run/app.sock", "backup": True}],
             "green_eu": ["[2001:db8::1]:3001"]}
    text = config.render(config.build_routing("danci", pools, weights={"blue": 90, "green": 10, "green_eu": 0}, canary="green"))
    routing = config.read_routing(text, "danci")
    assert routing["pools"] == config.normalise_pools(pools)
    assert routing["weights"] == {"blue": 90, "green": 10, "green_eu": 0} and routing["canary"] == "green" and routing["active"] is None
    assert config.read_routing("upstream danci_blue {\n    server a:1;\n}\n", "danci") is None, "no state line: not ours"


# --- refused inputs --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, fragment", [
    (dict(app="easy-erp", active="blue"), "name 'easy-erp' must match"),
    (dict(pools={"Blue": ["127.0.0.1:1"]}, active="Blue"), "pool name 'Blue' must match"),
    (dict(pools={}, active="blue"), "pools must map"),
    (dict(pools={"blue": []}, active="blue"), "pool blue needs at least one server"),
    (dict(pools={"blue": ["127.0.0.1:80; } server { listen 81"]}, active="blue"), "must be host:port"),
    (dict(pools={"blue": ["127.0.0.1:70000"]}, active="blue"), "must be host:port"),
    (dict(pools={"blue": [{"address": "a:1", "wieght": 2}]}, active="blue"), "unknown server setting(s) wieght"),
    (dict(pools={"blue": [{"address": "a:1", "weight": 0}]}, active="blue"), "weight must be an integer of at least 1"),
    (dict(pools={"blue": [{"address": "a:1", "fail_timeout": "10 s"}]}, active="blue"), "fail_timeout '10 s'"),
    (dict(pools={"blue": [{"address": "a:1", "backup": True}]}, active="blue"), "neither backup nor down"),
    (dict(active="purple"), "active pool 'purple' is not one of the pools"),
    (dict(), "give exactly one of active"),
    (dict(active="blue", weights={"blue": 100}), "give exactly one of active"),
    (dict(active="blue", split_key="remote_addr"), "split_key 'remote_addr'"),
    (dict(active="blue", split_key="$remote_addr\";"), "split_key"),
    (dict(active="blue", force_header="X Release"), "force_header 'X Release'"),
    (dict(active="blue", force_cookie="release-pool"), "force_cookie 'release-pool'"),
])
def test_invalid_routing_is_refused_with_the_reason(kwargs, fragment):
    with pytest.raises(SplitConfigError, match=re.escape(fragment)):
        routing(**kwargs)


# --- the file and its companions -------------------------------------------------------------------

def test_first_write_keeps_an_empty_previous_and_records_nothing_live_yet(tmp_path):
    include = config.IncludeFile(str(tmp_path / "danci_split.conf"))
    include.write("one\n")
    assert include.read() == "one\n" and include.read_previous() == ""
    assert include.is_pending("one\n")  # written without reload: nginx does not run it
    include.record_live("one\n")
    assert not include.is_pending("one\n")
    include.write("two\n")
    assert include.read_previous() == "one\n" and include.is_pending("two\n")
    assert sorted(os.listdir(str(tmp_path))) == ["danci_split.conf", "danci_split.conf.live", "danci_split.conf.previous"]


def test_put_back_restores_file_previous_and_live_record(tmp_path):
    path = tmp_path / "danci_split.conf"
    path.write_text("old\n")
    os.chmod(str(path), 0o640)
    include = config.IncludeFile(str(path))
    snapshot = include.snapshot()
    include.write("new\n")
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640  # the file keeps its mode
    include.put_back(snapshot)
    assert include.read() == "old\n" and include.read_previous() is None and include.live_digest() is None


def test_resolve_path_puts_the_file_into_a_directory(tmp_path):
    assert config.resolve_path(str(tmp_path), "danci") == str(tmp_path / "danci_split.conf")
    assert config.resolve_path(str(tmp_path / "x.conf"), "danci") == str(tmp_path / "x.conf")


# --- switching against real nginx -t --------------------------------------------------------------

@pytest.fixture
def nginx_conf(tmp_path):
    """A main configuration including conf.d/*.conf in http{}; only tested, never started."""
    conf_dir = tmp_path / "conf.d"
    conf_dir.mkdir()
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text("pid %s/nginx.pid;\nerror_log %s/logs/error.log;\nevents {}\nhttp {\n    include %s/*.conf;\n}\n"
                    % (tmp_path, tmp_path, conf_dir))
    return runner_utils.NginxRunner(NGINX, conf=str(main), prefix=str(tmp_path)), str(conf_dir)


def test_switch_without_reload_validates_and_leaves_the_file_pending(nginx_conf):
    runner, conf_dir = nginx_conf
    include = config.IncludeFile(config.resolve_path(conf_dir, "danci"))
    content = config.render(routing(active="blue"))
    done = config.switch(include, content, runner, reload=False)
    assert done["written"] and done["validated"] and not done["reloaded"] and done["pending"]
    assert "test is successful" in done["nginx"]["test"]
    again = config.switch(include, content, runner, reload=False)
    assert not again["changed"] and not again["written"]


def test_switch_puts_the_previous_file_back_when_nginx_refuses(nginx_conf):
    runner, conf_dir = nginx_conf
    include = config.IncludeFile(config.resolve_path(conf_dir, "danci"))
    good = config.render(routing(active="blue"))
    config.switch(include, good, runner, reload=False)
    snapshot = include.snapshot()
    broken = config.render(routing(pools=dict(POOLS, green=["no-such-host.invalid:80"]), active="green"))
    with pytest.raises(config.SwitchError) as failure:
        config.switch(include, broken, runner, reload=False)
    assert 'host not found in upstream "no-such-host.invalid:80"' in failure.value.message
    assert "previous file was put back" in failure.value.message
    assert include.snapshot() == snapshot
    assert [name for name in os.listdir(conf_dir) if name.endswith(".tmp")] == []


def test_check_mode_plans_without_touching_anything(nginx_conf):
    runner, conf_dir = nginx_conf
    include = config.IncludeFile(config.resolve_path(conf_dir, "danci"))
    planned = config.switch(include, config.render(routing(active="blue")), runner, check_mode=True)
    assert planned["changed"] and not planned["written"] and planned["diff"]["before"] == ""
    assert os.listdir(conf_dir) == []


def test_switch_refuses_to_write_when_nginx_is_not_running(nginx_conf):
    runner, conf_dir = nginx_conf
    include = config.IncludeFile(config.resolve_path(conf_dir, "danci"))
    with pytest.raises(config.SwitchError, match="nginx is not running.*Nothing was changed"):
        config.switch(include, config.render(routing(active="blue")), runner)
    assert os.listdir(conf_dir) == []


# --- the runner's parsing --------------------------------------------------------------------------

def test_runner_reads_version_pid_and_error_log_from_nginx(nginx_conf, tmp_path):
    runner, _conf_dir = nginx_conf
    assert re.match(r"nginx/\d+\.\d+", runner.version())
    assert runner.locations() == (str(tmp_path / "nginx.pid"), str(tmp_path / "logs" / "error.log"))
    assert runner.argv("-t") == [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-t"]


def test_dump_parsing_ignores_comments_and_non_file_logs():
    dump = ("# configuration file /etc/nginx/nginx.conf:\n#pid /old.pid;\nerror_log stderr;\n"
            "error_log syslog:server=unix:/dev/log;\n  pid   \"/run/x.pid\" ;\nhttp { error_log logs/http.log warn; }\n")
    assert runner_utils.parse_pid_path(dump) == "/run/x.pid"
    assert runner_utils.parse_error_log(dump) == "logs/http.log"
    assert runner_utils.parse_pid_path("events {}") is None
    settings = runner_utils.parse_configure("configure arguments: --prefix=/usr/share/nginx --pid-path=/run/nginx.pid")
    assert settings == {"prefix": "/usr/share/nginx", "pid-path": "/run/nginx.pid"}
