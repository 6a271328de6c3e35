"""The instructor's tools: running notebooks, releasing exercises, grading a class.

Apart from what students import (data, models, training, metrics, plots, widgets): the
student bundle (``course release --zip``) leaves this package out, and no module outside
it imports it (the ``course`` command loads its commands when they are there).

Modules, by job:

``nbgrader_setup``   the one place that builds nbgrader's API and fills a course directory;
``notebooks``        running notebooks headless with papermill, the results table, notebook hygiene;
``release``          generating and checking ``exercises/`` from ``solutions/``, leak checks, the student bundle;
``grading``          what grading one notebook needs: an assignment's parts and points, the reference answer,
                     a submission's checks, failures of the environment;
``library_copies``   the ``course_lib`` names that implement a part, and a submission's code that uses them;
``grading_process``  one student graded in a grading process of its own: the job and outcome records;
``feedback``         feedback pages for students that never show the hidden tests;
``class_grading``    grading a class (``course grade``) after grading the reference answer, or the students
                     one names (``autograde``);
``submissions``      finding each student's submission in what an LMS hands an instructor;
``cli``              the instructor's commands of ``course``: run, release, grade, results.
"""
