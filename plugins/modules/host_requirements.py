#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: host_requirements
short_description: Check that a managed host has what the saferelease.core modules and playbooks need there
description:
  - Imports each Python module in O(python) with the interpreter Ansible runs modules with on this host, and looks up
    each command of O(commands) in C(PATH) (and C(/usr/sbin), C(/sbin)), so the answer is about what will really run.
  - Names the Debian package that provides everything missing, so the fix is one C(apt-get install) or one run of
    C(playbooks/prepare-host.yml).
  - Read only.
version_added: 0.1.0
author:
  - saferelease.core contributors (@saferelease)
options:
  python:
    description:
      - Python modules that must import, each with the package that provides it and why it is needed.
    type: list
    elements: dict
    default: []
    suboptions:
      module:
        description: The module to import, for example C(pymysql).
        type: str
        required: true
      package:
        description: The Debian package that provides it, for example C(python3-pymysql).
        type: str
        required: true
      why:
        description: What needs it, for the message.
        type: str
        default: ''
  commands:
    description:
      - Commands that must be found; any one name of C(names) is enough.
    type: list
    elements: dict
    default: []
    suboptions:
      names:
        description: Names of the command, any one of which will do (C([mariadb-dump, mysqldump])).
        type: list
        elements: str
        required: true
      package:
        description: The Debian package that provides it.
        type: str
        required: true
      why:
        description: What needs it, for the message.
        type: str
        default: ''
      install:
        description:
          - How to install it when it is not a Debian package (C(npm install -g pm2@5.4.3)); the message gives this
            command instead of an C(apt-get install).
        type: str
  fail_on_missing:
    description: Fail the task when anything is missing (the message names the packages and how to install them).
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Read only; it runs the same way in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - C(playbooks/prepare-host.yml) installs what each host of the fleet needs; the saferelease.core playbooks run this
    check (through the C(host) role) before they change anything.
'''

EXAMPLES = r'''
- name: Check the host can run db_backup and prisma_migration_state on MySQL
  saferelease.core.host_requirements:
    python:
      - {module: pymysql, package: python3-pymysql, why: the mysql database}
    commands:
      - {names: [zstd], package: zstd, why: db_backup compression}
      - {names: [mariadb-dump, mysqldump], package: mariadb-client, why: db_backup}
'''

RETURN = r'''
missing:
  description: What is missing, one entry per package, with what it provides and why it is needed.
  returned: always
  type: list
  elements: dict
  sample: [{package: python3-pymysql, provides: [pymysql], why: [the mysql database], install: null}]
packages:
  description: The packages to install (Debian packages, and the others by the name O(commands[].package) gives), in order.
  returned: always
  type: list
  elements: str
  sample: [python3-pymysql, zstd]
python:
  description: The interpreter the imports were tried with.
  returned: always
  type: str
  sample: /usr/bin/python3
'''

import importlib
import os
import shutil
import sys

from ansible.module_utils.basic import AnsibleModule

SYSTEM_DIRS = ('/usr/local/sbin', '/usr/sbin', '/sbin')


def importable(name):
    try:
        importlib.import_module(name)
    except Exception:  # pylint: disable=broad-except
        # any failure to import (missing, broken build, missing shared library) is missing for the modules
        return False
    return True


def find_command(names):
    path = os.pathsep.join([os.environ.get('PATH', '')] + list(SYSTEM_DIRS))
    return any(shutil.which(name, path=path) for name in names)


def missing_requirements(python, commands):
    """``[{package, provides, why}]`` for everything absent, one entry per package in the order first needed."""
    missing = {}
    order = []

    def note(package, provides, why, install=None):
        if package not in missing:
            missing[package] = dict(package=package, provides=[], why=[], install=install)
            order.append(package)
        missing[package]['provides'].append(provides)
        if why and why not in missing[package]['why']:
            missing[package]['why'].append(why)

    for item in python:
        if not importable(item['module']):
            note(item['package'], item['module'], item['why'])
    for item in commands:
        if not find_command(item['names']):
            note(item['package'], ' or '.join(item['names']), item['why'], item.get('install'))
    return [missing[package] for package in order]


def message(missing):
    parts = ['%s (%s%s)' % (m['package'], ', '.join(m['provides']), ': ' + ', '.join(m['why']) if m['why'] else '')
             for m in missing]
    steps = []
    apt = [m['package'] for m in missing if not m.get('install')]
    if apt:
        steps.append('apt-get install -y %s' % ' '.join(apt))
    steps.extend(m['install'] for m in missing if m.get('install'))
    return ('This host lacks %s. Nothing was changed. Install with: %s; or run playbooks/prepare-host.yml for this host.'
            % ('; '.join(parts), ' && '.join(steps)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            python=dict(type='list', elements='dict', default=[], options=dict(
                module=dict(type='str', required=True), package=dict(type='str', required=True),
                why=dict(type='str', default=''))),
            commands=dict(type='list', elements='dict', default=[], options=dict(
                names=dict(type='list', elements='str', required=True), package=dict(type='str', required=True),
                why=dict(type='str', default=''), install=dict(type='str'))),
            fail_on_missing=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    missing = missing_requirements(module.params['python'], module.params['commands'])
    result = dict(changed=False, missing=missing, packages=[m['package'] for m in missing], python=sys.executable)
    if missing and module.params['fail_on_missing']:
        module.fail_json(msg=message(missing), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
